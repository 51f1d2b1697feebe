"""Every notebook in notebooks/ runs top to bottom (small sizes) and saves its figures; committed ones are clean,
and each agrees with its text source (``notebooks/NN_name.py``, jupytext's ``py:percent``), where notebooks are edited.

Each notebook has one parameters cell reading ``JAXRNN_NOTEBOOK_SMALL`` (tiny sizes here) and
``JAXRNN_NOTEBOOK_OUT`` (where ``fig.savefig`` writes). The kernel is this interpreter (``sys.executable``,
through a kernelspec written for the test), so it sees the same environment as the tests, and this checkout of
jaxrnn comes first on its ``PYTHONPATH``.
"""

import json
import os
import pathlib
import re
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = pathlib.Path(__file__).resolve().parent.parent
# *_run: executed copies
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("*.ipynb") if not p.stem.endswith("_run"))
SAVEFIG = re.compile(r"""savefig\(os\.path\.join\(OUT_DIR,\s*["']([^"']+\.png)["']\)""")
KERNEL = "jaxrnn-test-python"


def _read(path):
  return nbformat.read(path, as_version=4)


def _code(nb):
  return [c for c in nb.cells if c.cell_type == "code"]


def test_notebooks_exist():
  names = [p.stem for p in NOTEBOOKS]
  assert names == ["01_understanding_lstm", "02_long_term_dependencies", "03_variants", "04_char_lm",
                   "05_attention", "06_parallel_scans"]
  sources = sorted(p.stem for p in (ROOT / "notebooks").glob("*.py"))
  assert sources == names, "each notebook is a pair: NN_name.py (edited) and NN_name.ipynb (written by jupytext)"


def _cells(nb):
  """What a text source holds of each cell: its kind, its source and its tags."""
  return [(c.cell_type, c.source.strip("\n"), c.metadata.get("tags", [])) for c in nb.cells]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_agrees_with_its_text_source(path):
  """The .ipynb is what ``jupytext --sync`` writes from the .py: same cells, same pairing."""
  jupytext = pytest.importorskip("jupytext")
  source = path.with_suffix(".py")
  nb = _read(path)
  assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", f"{path.name} is not paired"
  text = jupytext.read(source)
  assert _cells(text) == _cells(nb), (f"{source.name} and {path.name} differ: edit the .py, then run "
                                      f"`jupytext --sync notebooks/{source.name}`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean(path):
  """Committed notebooks hold no outputs and have one parameters cell with the SMALL switch."""
  nb = _read(path)
  nbformat.validate(nb)
  for i, cell in enumerate(_code(nb)):
    assert cell.outputs == [], f"{path.name}: code cell {i} has outputs; clear them before committing"
    assert cell.execution_count is None, f"{path.name}: code cell {i} has an execution count"
  params = [c for c in _code(nb) if "JAXRNN_NOTEBOOK_SMALL" in c.source]
  assert len(params) == 1 and "parameters" in params[0].metadata.get("tags", []), path.name
  assert "JAXRNN_NOTEBOOK_OUT" in params[0].source
  assert SAVEFIG.search("".join(c.source for c in _code(nb))), f"{path.name} saves no figure"


@pytest.fixture(scope="module")
def kernel_manager_factory(tmp_path_factory):
  """Kernel managers that start ``sys.executable -m ipykernel_launcher`` (not whatever "python3" resolves to)."""
  from jupyter_client.kernelspec import KernelSpecManager
  from jupyter_client.manager import KernelManager

  kernels = tmp_path_factory.mktemp("kernels")
  spec_dir = kernels / KERNEL
  spec_dir.mkdir()
  (spec_dir / "kernel.json").write_text(json.dumps({
      "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
      "display_name": "jaxrnn test kernel", "language": "python"}))
  specs = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
  assert KERNEL in specs.find_kernel_specs()
  return lambda: KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, kernel_manager_factory):
  nb = _read(path)
  expected = SAVEFIG.findall("".join(c.source for c in _code(nb)))
  out_dir = tmp_path / "figures"
  env = dict(os.environ)
  # At their small sizes the notebooks are XLA compiles of tiny programs, so the kernel compiles them without XLA's
  # backend optimisations (conftest.quick_compiles): 69 -> 42 s for the six (loaded 2-core machine). `make docs`
  # executes them again with the optimisations on.
  env.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
  env.update(JAXRNN_NOTEBOOK_SMALL="1", JAXRNN_NOTEBOOK_OUT=str(out_dir), MPLBACKEND="Agg",
             PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p]))
  nb.cells.append(nbformat.v4.new_code_cell("import jaxrnn\nprint(jaxrnn.__file__)"))
  client = nbclient.NotebookClient(nb, km=kernel_manager_factory(), timeout=300,
                                   resources={"metadata": {"path": str(tmp_path)}})
  client.execute(env=env)  # raises CellExecutionError (with the traceback) if any cell fails
  outputs = [o for c in _code(nb) for o in c.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  where = "".join(o.text for o in nb.cells[-1].outputs if o.get("name") == "stdout").strip()
  assert pathlib.Path(where).resolve().is_relative_to(ROOT), f"the kernel imported jaxrnn from {where}"
  for name in expected:
    png = out_dir / name
    assert png.is_file() and png.stat().st_size > 0, f"{path.name} did not save {name}"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
