# One command from nothing: `make test` makes a virtualenv, installs jaxrnn with every extra and the test tools
# (`.[all,test]`), builds the native CPU sequence path (a few seconds of g++; without a compiler jaxrnn runs the
# pure-JAX path and the step says why), runs pytest.
PYTHON ?= python3
# Python writes the bytecode of what it imports (into .venv and the ignored __pycache__ folders) even where the
# environment sets PYTHONDONTWRITEBYTECODE: with it set, every test process (the two pytest workers, and the
# notebooks', CLI, distributed and fault-injection tests' subprocesses) compiled the ~4,400 modules it imports again,
# 4-11 s each. Measured on the 2-core machine, the tests that start subprocesses (train_faults, distributed,
# notebooks, train_loop, export, package, train_cli; `-n 2`, fresh caches, two pairs): 99 / 98 -> 67 / 67 s.
unexport PYTHONDONTWRITEBYTECODE
VENV ?= .venv
PY := $(VENV)/bin/python
# --no-compile: pip does not byte-compile every installed module (torch alone has thousands); Python compiles what
# is imported, once. Measured on the 2-core machine (loaded): torch 81 -> 26 s, the rest 132 -> 82 s.
PIP := $(PY) -m pip install -q --no-compile
STAMP := $(VENV)/.installed

DOCS_STAMP := $(VENV)/.installed-docs
LINT_STAMP := $(VENV)/.installed-lint

.PHONY: test train install native clean docs lint

test: native
	$(PY) -m pytest -q -n auto

# The main job: train the default model (a character-level LSTM on Python's own stdlib source) in runs/default;
# it prints where its loss curve and samples are. Re-running resumes from the last checkpoint.
train: native
	$(VENV)/bin/jaxrnn train

install: native

# Builds jaxrnn/native/rnn.cc unless the build for this source and jaxlib is there (then a no-op).
native: $(STAMP)
	$(PY) -m jaxrnn.native.build

# The docs site in docs/_build/html, warnings as errors; the notebooks run at their small size during the build
# (they need the extras of `make test`'s install). Nothing is downloaded.
docs: $(DOCS_STAMP)
	$(PY) -m sphinx -W --keep-going -j auto -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

# ruff (lint; formatting of the files listed here, the rest keeps its hand layout) and pyright over jaxrnn/ (its
# settings in pyproject.toml; pointed at this virtualenv's Python, where every extra is installed).
FORMATTED := docs/conf.py docs/_ext tests/test_docs.py
lint: $(LINT_STAMP)
	$(VENV)/bin/ruff check jaxrnn tests docs notebooks benchmarks conftest.py
	$(VENV)/bin/ruff format --check $(FORMATTED)
	$(VENV)/bin/pyright --pythonpath $(PY)

$(DOCS_STAMP): $(STAMP)
	$(PIP) -e ".[all,test,docs]"
	touch $(DOCS_STAMP)

$(LINT_STAMP): $(STAMP)
	$(PIP) -e ".[all,test,lint]"
	touch $(LINT_STAMP)

# torch==2.13.0 is pinned (CPU build); installed first so that nothing pulls a CUDA build. The ONNX export's converter
# (tests/test_export_onnx.py) goes in without its declared dependencies: every jax2onnx release pins
# orbax-checkpoint<0.11.37, a downgrade of the trainer's; its converter needs only onnx, onnx-ir and onnxruntime.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) "torch==2.13.0"
	$(PIP) -e ".[all,test]" "onnx==1.23.2" "onnx-ir==1.1.0" "onnxruntime==1.32.0"
	$(PIP) --no-deps "jax2onnx==0.17.1"
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache docs/_build docs/notebooks
