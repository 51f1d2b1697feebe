"""Test configuration shared by tests/ and the doctests in jaxrnn/.

float64 is enabled so that references can be checked to 1e-10; tests give float32 explicitly where they mean it.
Rank promotion raises, so silent broadcasting between mismatched ranks is a test failure (as in Equinox).
"""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
