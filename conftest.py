"""Test configuration shared by tests/ and the doctests in jaxrnn/.

float64 is enabled so that references can be checked to 1e-10; tests give float32 explicitly where they mean it.
Rank promotion raises, so silent broadcasting between mismatched ranks is a test failure (as in Equinox).

Most of the suite's time is XLA compiling many tiny programs; the CPU backend's LLVM optimization level 2 instead
of the default 3 compiles them several times faster (the tests' programs run as fast). Set before jax starts its
backend, and inherited by the subprocesses the tests start (CLI, notebook kernels). An ``XLA_FLAGS`` that already
sets a level wins.
"""

import os

if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=2").strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
