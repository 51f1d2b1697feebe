"""Test configuration shared by tests/ and the doctests in jaxrnn/.

float64 is enabled so that references can be checked to 1e-10; tests give float32 explicitly where they mean it.
Rank promotion raises, so silent broadcasting between mismatched ranks is a test failure (as in Equinox).

Most of the suite's time is XLA compiling many tiny programs. Three CPU-backend flags compile them several times
faster, and the tests' programs run about as fast: LLVM optimization level 2 instead of 3; XLA:CPU's older elemental
fusion emitters instead of the MLIR fusion emitters (``--xla_cpu_use_fusion_emitters=false``, before jaxlib 0.11:
2.3x less CPU time for the registry's generic checks, 128 s -> 56 s for ``tests/test_generic.py -k "gru and not
min_gru"``); and one LLVM module per program instead of splitting it for parallel codegen, which only adds work on a
2-core machine running two test workers. Set before jax starts its backend, and inherited by the subprocesses the
tests start (CLI, notebook kernels). A flag that ``XLA_FLAGS`` already sets wins.
"""

import importlib.metadata
import os


def _jaxlib_before(major: int, minor: int) -> bool:
  release = importlib.metadata.version("jaxlib").split(".")[:2]  # read without starting jax
  return tuple(int("".join(ch for ch in part if ch.isdigit()) or 0) for part in release) < (major, minor)


_FAST_COMPILES = {
    "xla_backend_optimization_level": "2",
    "xla_cpu_parallel_codegen_split_count": "1",
}
# XLA aborts the process on a flag it does not know. jaxlib 0.11 has no --xla_cpu_use_fusion_emitters (its
# XLA:CPU always uses the fusion emitters): there the flag killed every test before it ran (exit 1, no output;
# seen on the GPU machine's jax 0.11.2).
if _jaxlib_before(0, 11):
  _FAST_COMPILES["xla_cpu_use_fusion_emitters"] = "false"
for _flag, _value in _FAST_COMPILES.items():
  if _flag not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --{_flag}={_value}").strip()

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")



def _quick_compiles():
  before = jax.config.read("jax_disable_most_optimizations")
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", before)


@pytest.fixture(scope="module")
def quick_compiles():
  """XLA compiles without its backend optimisations (``jax_disable_most_optimizations``) in this module.

  For modules of many tiny programs, each run once or a few times (``pytestmark =
  pytest.mark.usefixtures("quick_compiles")``): compiling them unoptimised saves more than they lose running.
  Not for modules that time programs, run long sequences or read compiled memory.
  """
  yield from _quick_compiles()


@pytest.fixture
def quick_compiles_test():
  """:func:`quick_compiles` for one test (``@pytest.mark.usefixtures("quick_compiles_test")``), in a module whose
  other tests need XLA's optimisations (memory analysis, long sequences)."""
  yield from _quick_compiles()


@pytest.fixture(autouse=True)
def _doctests_compile_quickly(request):
  """The doctests in jaxrnn/ are tiny programs run once: :func:`quick_compiles` for each (48.6 -> 40.2 s of CPU for
  the 76 of them)."""
  if isinstance(request.node, pytest.DoctestItem):
    yield from _quick_compiles()
  else:
    yield


def pytest_configure(config):
  """Under pytest-xdist, tests are handed to the workers one at a time as they finish (``--maxschedchunk=1``)
  unless the command line says otherwise: with the slow tests first (below), the workers end together."""
  if config.pluginmanager.hasplugin("xdist") and config.getoption("maxschedchunk", None) is None:
    config.option.maxschedchunk = 1


def pytest_collection_modifyitems(config, items):
  """Runs the tests marked ``slow`` first (the order is otherwise kept).

  With ``--maxschedchunk=1`` pytest-xdist's ``--dist load`` gives each worker two tests, then one more each time it
  finishes one: the long tests start early, spread over the workers, and the many short ones fill in, so the
  workers end together instead of one waiting for a long test handed out last.
  """
  del config
  items.sort(key=lambda item: item.get_closest_marker("slow") is None)
