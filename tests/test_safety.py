"""Nothing in the library unpickles data; checkpoints are written in formats that cannot execute code."""

import ast
import pathlib

import jax.numpy as jnp
import pytest

LIB = pathlib.Path(__file__).resolve().parent.parent / "jaxrnn"
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _kwarg(call: ast.Call, name: str):
  for kw in call.keywords:
    if kw.arg == name:
      return kw.value.value if isinstance(kw.value, ast.Constant) else kw.value
  return None


def unsafe_uses(source: str) -> list:
  """Lines of ``source`` (Python code; comments and docstrings do not count) that can execute code from data."""
  found = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
      names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
      if any(n.split(".")[0] in UNSAFE_MODULES for n in names):
        found.append((node.lineno, "imports " + ", ".join(names)))
    elif isinstance(node, ast.Call):
      f = node.func
      if isinstance(f, ast.Name) and f.id in ("eval", "exec"):
        found.append((node.lineno, f"{f.id}()"))
      if _kwarg(node, "allow_pickle") is True:
        found.append((node.lineno, "allow_pickle=True"))
      if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
        mod, fn = f.value.id, f.attr
        if mod == "torch" and fn == "load" and _kwarg(node, "weights_only") is not True:
          found.append((node.lineno, "torch.load without weights_only=True"))
        if mod in ("np", "numpy", "onp") and fn == "load" and _kwarg(node, "allow_pickle") is not False:
          found.append((node.lineno, "np.load without allow_pickle=False"))
        if mod == "yaml" and fn in ("load", "load_all", "unsafe_load", "full_load"):
          found.append((node.lineno, f"yaml.{fn} (use yaml.safe_load)"))
        if mod in UNSAFE_MODULES and fn in ("load", "loads", "Unpickler"):
          found.append((node.lineno, f"{mod}.{fn}"))
  return found


def test_library_never_unpickles():
  files = sorted(LIB.rglob("*.py"))
  assert len(files) > 20
  bad = {str(p.relative_to(LIB.parent)): hits for p in files if (hits := unsafe_uses(p.read_text()))}
  assert not bad, f"code that can execute data: {bad}"


@pytest.mark.parametrize("snippet", [
    "import pickle", "from dill import loads", "x = torch.load(f)", "x = torch.load(f, weights_only=False)",
    "x = np.load(f)", "x = numpy.load(f, allow_pickle=True)", "yaml.load(s)", "eval(s)", "marshal.loads(b)",
])
def test_the_scanner_catches(snippet):
  assert unsafe_uses(snippet)


@pytest.mark.parametrize("snippet", [
    "x = torch.load(f, weights_only=True)", "x = np.load(f, allow_pickle=False)", "yaml.safe_load(s)",
    '"""pickle.loads in a docstring"""', "# torch.load(f) in a comment", "run.evaluate(p)",
])
def test_the_scanner_allows(snippet):
  assert not unsafe_uses(snippet)


def test_checkpoint_files_are_not_pickles(tmp_path):
  from jaxrnn.train.checkpoint import MANIFEST, Checkpointer
  ckpt = Checkpointer(tmp_path, 1)
  ckpt.save(1, {"w": jnp.arange(6.0).reshape(2, 3), "step": jnp.int32(1)})
  ckpt.close()
  files = [p for p in (tmp_path / "checkpoints").rglob("*") if p.is_file()]
  assert any(p.name == MANIFEST for p in files)
  for p in files:
    head = p.read_bytes()[:2]
    assert not (len(head) == 2 and head[0] == 0x80 and head[1] in range(2, 6)), f"{p} looks like a pickle"
