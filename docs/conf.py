"""Sphinx configuration of the jaxrnn docs (``make docs``).

The notebooks in ``notebooks/`` are copied into ``docs/notebooks/`` (ignored by git) and executed by myst-nb at their
small size (``JAXRNN_NOTEBOOK_SMALL=1``): the committed notebooks have no outputs. Nothing is downloaded: no
intersphinx inventories, and MathJax is served from the build (``docs/_ext/mathjax_offline.py``).
"""

import os
import pathlib
import shutil
import sys

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

import jaxrnn  # noqa: E402  (this checkout's, first on the path)

project = "jaxrnn"
author = "the jaxrnn authors"
copyright = "the jaxrnn authors"  # noqa: A001  (Sphinx's name)
version = release = jaxrnn.__version__

extensions = [
  "celldoc",  # docs/_ext/celldoc.py: the cells gallery
  "myst_nb",
  "sphinx.ext.autodoc",
  "sphinx.ext.autosummary",
  "sphinx.ext.napoleon",
  "sphinx.ext.mathjax",
  "mathjax_offline",  # docs/_ext/mathjax_offline.py: MathJax served from the build
]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "README.md"]
suppress_warnings = []

# The theme.
html_theme = "furo"
html_title = f"jaxrnn {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
pygments_style = "friendly"
pygments_dark_style = "monokai"

# MyST: $...$ and $$...$$ math in Markdown pages and notebooks, anchors for headings.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# The API reference: Google docstrings, signatures as written in the source.
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False
autosummary_generate = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes:" as fields (a Flax module's attributes are documented members too)
napoleon_custom_sections = [("Fields", "params_style")]  # NamedTuples list their fields under "Fields:"
add_module_names = False

# The notebooks: copied here (only when changed, so that an unchanged notebook is not rebuilt), executed at their
# small size by the "python3" kernel (jupyter_client starts it with this interpreter), which imports this checkout
# first; an error fails the build.
_NOTEBOOKS = DOCS / "notebooks"
_NOTEBOOKS.mkdir(exist_ok=True)
for _src in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
  if _src.stem.endswith("_run"):  # executed copies (`jupyter execute --output '{notebook_name}_run'`), ignored by git
    continue
  _dst = _NOTEBOOKS / _src.name
  if not _dst.exists() or _dst.read_bytes() != _src.read_bytes():
    shutil.copyfile(_src, _dst)
for _stale in _NOTEBOOKS.glob("*.ipynb"):
  if not (ROOT / "notebooks" / _stale.name).exists():
    _stale.unlink()
os.environ["JAXRNN_NOTEBOOK_SMALL"] = "1"
os.environ.setdefault("JAXRNN_NOTEBOOK_OUT", str(DOCS / "_build" / "notebook_figures"))
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):  # compiles faster, as in the tests
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=2").strip()
nb_execution_mode = "force"
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
nb_kernel_rgx_aliases = {".*": "python3"}
