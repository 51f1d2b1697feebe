"""The package itself: the public namespace (``jaxrnn/__init__.py``), deprecated names, optional dependencies and
the errors that name their extra (``jaxrnn/_optional.py``), ``pyproject.toml``'s dependencies, ``py.typed``, and
no import circles."""

import ast
import importlib
import inspect
import pathlib
import re
import subprocess
import sys
import tomllib
import types

import pytest

import jaxrnn
from jaxrnn.attention import seq2seq as seq2seq_lib
from jaxrnn.train import checkpoint as checkpoint_lib
from jaxrnn.train import loop, report

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


# -- the public namespace ---------------------------------------------------------------------------------------

def test_all_lists_exactly_the_public_names():
  names = jaxrnn.__all__
  assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
  assert [n for n in names if not hasattr(jaxrnn, n)] == []
  public = {n for n in vars(jaxrnn) if not n.startswith("_")}
  # Submodules bound by importing them (jaxrnn.cells, jaxrnn.types, ...) are reachable but not re-exported.
  unlisted = {n for n in public - set(names) if not isinstance(getattr(jaxrnn, n), types.ModuleType)}
  assert unlisted == set()


def test_no_issue_banners_in_the_namespace_module():
  source = (ROOT / "jaxrnn" / "__init__.py").read_text()
  assert "issue" not in source.lower()


# Old top-level name -> where it lives now; the test looks the value up there.
DEPRECATED = {
    "attention_tasks": "jaxrnn.train.tasks.digits",
    "Encoder": "jaxrnn.attention.seq2seq.Encoder",
    "rnn_encoder": "jaxrnn.attention.seq2seq.rnn_encoder",
    "grid_lstm_1d": "jaxrnn.cells.grid_lstm.grid_lstm_1d",
    "GridLSTM1D": "jaxrnn.cells.grid_lstm.GridLSTM1D",
    "GridLSTM1DParams": "jaxrnn.cells.grid_lstm.GridLSTM1DParams",
    "grid_block": "jaxrnn.cells.grid_lstm.grid_block",
    "GridBlock": "jaxrnn.cells.grid_lstm.GridBlock",
    "grid_lstm_block": "jaxrnn.cells.grid_lstm.grid_lstm_block",
}


def resolve(path):
  """The module, or the module's attribute, at a dotted path."""
  module, _, attr = path.rpartition(".")
  parent = importlib.import_module(module)
  return getattr(parent, attr) if hasattr(parent, attr) else importlib.import_module(path)


@pytest.mark.parametrize("name", sorted(DEPRECATED))
def test_deprecated_name_still_works_with_a_warning(name):
  new = DEPRECATED[name]
  value = resolve(new)
  message = f"jaxrnn.{name} is deprecated and will be removed in the next release; use {new}"
  with pytest.warns(DeprecationWarning, match=f"^{re.escape(message)}$"):
    assert getattr(jaxrnn, name) is value
  assert name not in jaxrnn.__all__ and name not in dir(jaxrnn)


def test_deprecated_names_are_the_declared_ones_and_from_import_warns():
  assert set(jaxrnn._DEPRECATED) == set(DEPRECATED)
  with pytest.warns(DeprecationWarning, match="jaxrnn.rnn_encoder is deprecated"):
    from jaxrnn import rnn_encoder  # pylint: disable=g-import-not-at-top
  assert rnn_encoder is seq2seq_lib.rnn_encoder


def _public_modules():
  """The modules under jaxrnn/ with no ``_``-prefixed part in their path (``__init__.py`` is its package's)."""
  for path in sorted((ROOT / "jaxrnn").rglob("*.py")):
    parts = path.relative_to(ROOT).parts
    if not any(p.startswith("_") and p != "__init__.py" for p in parts):
      yield path


def _unannotated(node):
  """The parameters of a ``def`` without an annotation (``"return"`` for a missing return annotation)."""
  a = node.args
  params = a.posonlyargs + a.args + a.kwonlyargs + [p for p in (a.vararg, a.kwarg) if p is not None]
  return [p.arg for p in params if p.annotation is None] + ([] if node.returns else ["return"])


def test_public_functions_are_annotated():
  # Every module-level public function of a public module: parameters and return (pyright reads them).
  missing = []
  for path in _public_modules():
    for node in ast.parse(path.read_text()).body:
      if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and _unannotated(node):
        missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {_unannotated(node)}")
  assert missing == []


def test_functions_in_all_are_annotated():
  # The functions of jaxrnn.__all__, wherever they are defined (a private module included).
  missing = []
  for name in jaxrnn.__all__:
    fn = getattr(jaxrnn, name)
    if isinstance(fn, types.FunctionType):
      params = [p for p in inspect.signature(fn).parameters if p not in fn.__annotations__]
      if params or "return" not in fn.__annotations__:
        missing.append(f"{name}: {params + ([] if 'return' in fn.__annotations__ else ['return'])}")
  assert missing == []


def test_unknown_attribute_raises_attribute_error():
  with pytest.raises(AttributeError, match="module 'jaxrnn' has no attribute 'not_a_cell'"):
    jaxrnn.not_a_cell  # noqa: B018 (the attribute access is what raises)


# -- optional dependencies --------------------------------------------------------------------------------------

# (module imported with `dependency` missing, the message of its ImportError)
MISSING_AT_IMPORT = [
    ("jaxrnn.flax.linen", "flax", "jaxrnn.flax.linen needs flax: pip install 'jaxrnn[flax]'"),
    ("jaxrnn.flax.nnx", "flax", "jaxrnn.flax.nnx needs flax: pip install 'jaxrnn[flax]'"),
    ("jaxrnn.flax.convert", "flax", "jaxrnn.flax.convert needs flax: pip install 'jaxrnn[flax]'"),
    ("jaxrnn.train", "optax", "jaxrnn.train needs optax: pip install 'jaxrnn[train]'"),
    ("jaxrnn.cli", "optax", "jaxrnn.train needs optax: pip install 'jaxrnn[train]'"),
    ("jaxrnn.interop.equinox", "equinox",
     "jaxrnn.interop.equinox needs equinox: pip install 'jaxrnn[equinox]'"),
    ("jaxrnn.interop.keras", "keras", "jaxrnn.interop.keras needs keras: pip install 'jaxrnn[keras]'"),
]

_CHECK_MISSING = """
import importlib, sys

import jax, jaxrnn  # imported once: only the modules under test are imported again

def check(module, dependency, want):
  sys.modules[dependency] = None  # `import dependency` raises ImportError
  try:
    importlib.import_module(module)
  except ImportError as e:
    assert str(e) == want, (module, str(e))
    assert isinstance(e.__cause__, ImportError), e.__cause__
  else:
    raise AssertionError(f"{module} imported without {dependency}")
  finally:
    del sys.modules[dependency]
    for name in [n for n in sys.modules if n.startswith(("jaxrnn.flax", "jaxrnn.train", "jaxrnn.cli",
                                                         "jaxrnn.interop.equinox", "jaxrnn.interop.keras"))]:
      del sys.modules[name]
"""


def test_missing_extra_at_import_names_the_extra():
  """In a fresh process (this one has the real modules imported), one for all the cases."""
  script = _CHECK_MISSING + "".join(f"check({m!r}, {d!r}, {w!r})\n" for m, d, w in MISSING_AT_IMPORT)
  proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr[-3000:]


def test_missing_orbax_names_the_extra(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "orbax.checkpoint", None)
  with pytest.raises(ImportError, match=r"^jaxrnn\.train's checkpoints needs orbax-checkpoint: "
                                        r"pip install 'jaxrnn\[train\]'$"):
    checkpoint_lib.Checkpointer(tmp_path, 1)


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, "matplotlib", None)
  with pytest.raises(ImportError, match=r"^jaxrnn\.train's plots needs matplotlib: pip install 'jaxrnn\[train\]'$"):
    report.plot_curves({}, tmp_path / "curves.png")


def test_missing_tqdm_names_the_extra(tmp_path, monkeypatch):
  cfg = loop.config_lib.from_dict({"task": {"name": "adding", "seq_len": 3},
                                   "model": {"cell": "irnn", "hidden_size": 2},
                                   "train": {"batch_size": 2, "steps": 1}})
  monkeypatch.setitem(sys.modules, "tqdm.auto", None)
  with pytest.raises(ImportError, match=r"^jaxrnn\.train's progress bar needs tqdm: pip install 'jaxrnn\[train\]'$"):
    loop.train(cfg, tmp_path / "run", progress=True, plot=False, log=lambda _: None)


# -- pyproject.toml ---------------------------------------------------------------------------------------------

def _name(requirement: str) -> str:
  for sep in "<>=!~;[ ":
    requirement = requirement.split(sep)[0]
  return requirement


def _imported_top_level_names(folder: pathlib.Path) -> set:
  names = set()
  for path in folder.rglob("*.py"):
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.Import):
        names |= {a.name.split(".")[0] for a in node.names}
      elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        names.add(node.module.split(".")[0])
      elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "importorskip" and isinstance(node.args[0], ast.Constant)):
        names.add(node.args[0].value.split(".")[0])  # pytest.importorskip("nbclient")
  return names


# Distributions imported under another name, or used without an import (a pytest plugin, the compiled half of jax).
# aeon: the `ucr` task reads the data files of its wheel and never imports it. flatbuffers: imported by jax.export's
# serialization (jaxrnn.export), not by jaxrnn itself.
_IMPORT_NAME = {"orbax-checkpoint": "orbax", "pytest-xdist": None, "jaxlib": None, "scikit-learn": "sklearn",
                "aeon": None, "flatbuffers": None}


def test_core_dependencies_are_jax_jaxlib_numpy():
  assert sorted(_name(r) for r in PYPROJECT["project"]["dependencies"]) == ["jax", "jaxlib", "numpy"]


def test_extras():
  extras = PYPROJECT["project"]["optional-dependencies"]
  names = {k: sorted(_name(r) for r in v) for k, v in extras.items()}
  assert names == {"flax": ["flax"], "train": ["matplotlib", "optax", "orbax-checkpoint", "tqdm"],
                   "torch": ["torch"], "all": ["jaxrnn"], "data": ["mnist1d", "scikit-learn"], "ucr": ["aeon"],
                   "equinox": ["equinox"], "keras": ["keras"], "export": ["flatbuffers"], "onnx": ["jax2onnx"],
                   "test": ["chex", "hypothesis", "ipykernel", "jupytext", "nbclient", "nbformat", "pytest",
                            "pytest-xdist"],
                   "docs": ["furo", "myst-nb", "sphinx", "sphinx-mathjax-offline"], "lint": ["pyright", "ruff"]}
  assert extras["torch"] == ["torch==2.13.0"]  # exactly: a looser pin downloads CUDA builds
  # not ucr (aeon pins numpy below jax's), not onnx (jax2onnx pins orbax-checkpoint below [train]'s)
  assert extras["all"] == ["jaxrnn[flax,train,torch,data,equinox,keras,export]"]


def test_every_declared_dependency_is_imported():
  """No declared dependency that nothing imports: the library's by jaxrnn/, the test tools by tests/ (or the
  notebooks' runner)."""
  project = PYPROJECT["project"]
  extras = project["optional-dependencies"]
  library = _imported_top_level_names(ROOT / "jaxrnn")
  tests = _imported_top_level_names(ROOT / "tests")
  for group, requirements, imported in [("dependencies", project["dependencies"], library),
                                        ("flax", extras["flax"], library), ("train", extras["train"], library),
                                        ("torch", extras["torch"], library), ("data", extras["data"], library),
                                        ("ucr", extras["ucr"], library), ("equinox", extras["equinox"], library),
                                        ("keras", extras["keras"], library), ("export", extras["export"], library),
                                        ("onnx", extras["onnx"], library),
                                        ("test", extras["test"], tests)]:
    for requirement in requirements:
      module = _IMPORT_NAME.get(_name(requirement), _name(requirement))
      assert module is None or module in imported, f"{group}: {requirement} is declared but never imported"


def test_py_typed_is_shipped():
  assert (ROOT / "jaxrnn" / "py.typed").is_file()
  assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["jaxrnn"]


# -- import structure -------------------------------------------------------------------------------------------

def _module_level_imports(tree: ast.Module):
  """Import statements run when the module is imported: top level, and inside top-level ``if``/``try`` (not the
  body of ``if TYPE_CHECKING:``, which only the type checker reads: imports for annotations)."""
  stack = list(tree.body)
  while stack:
    node = stack.pop()
    if isinstance(node, (ast.Import, ast.ImportFrom)):
      yield node
    elif isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
      stack += node.orelse
    elif isinstance(node, (ast.If, ast.Try)):
      stack += node.body + node.orelse + getattr(node, "finalbody", [])
      stack += [s for h in getattr(node, "handlers", []) for s in h.body]


def test_no_import_cycles():
  """The graph of first-party module-level imports in jaxrnn/ has no cycle (``from a import b`` counts as an edge
  to the module ``a.b`` when that is a module, else to ``a``)."""
  modules = {}
  for path in (ROOT / "jaxrnn").rglob("*.py"):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
  graph = {}
  for name, path in modules.items():
    edges = set()
    for node in _module_level_imports(ast.parse(path.read_text())):
      if isinstance(node, ast.Import):
        edges |= {a.name for a in node.names if a.name in modules}
      elif node.level == 0 and node.module and node.module.split(".")[0] == "jaxrnn":
        edges |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                  for a in node.names}
    graph[name] = edges - {name}
  state, cycles = {}, []

  def visit(u, path):
    state[u] = "open"
    path.append(u)
    for v in sorted(graph.get(u, ())):
      if state.get(v) == "open":
        cycles.append(" -> ".join(path[path.index(v):] + [v]))
      elif v not in state:
        visit(v, path)
    path.pop()
    state[u] = "done"

  for name in sorted(graph):
    if name not in state:
      visit(name, [])
  assert cycles == []


def test_version_is_single_sourced():
  """pyproject.toml reads the version from ``jaxrnn.__version__``; the docs and the CHANGELOG name no other."""
  assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
  assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "jaxrnn.__version__"}
  assert re.fullmatch(r"\d+\.\d+\.\d+", jaxrnn.__version__)
  assert f"## {jaxrnn.__version__}" in (ROOT / "CHANGELOG.md").read_text()
