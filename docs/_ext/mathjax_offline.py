"""MathJax served from the build (the ``sphinx-mathjax-offline`` package's copy), declared parallel-safe.

The package's own extension does the same but declares nothing, so ``sphinx -j`` would read serially with a
warning (an error under ``-W``). Its module name has dashes: imported with ``importlib``.
"""

import importlib

_PACKAGE = importlib.import_module("sphinx-mathjax-offline")


def setup(app):
  app.connect("build-finished", _PACKAGE.copy_mathjax_files)  # copies MathJax into _static/mathjax
  app.config.mathjax_path = "mathjax/tex-chtml.js"
  return {"parallel_read_safe": True, "parallel_write_safe": True}
