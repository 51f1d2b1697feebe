"""mLSTM's chunkwise parallel form (``chunk_size``) == its recurrence (values, gradients), and its memory grows
linearly in T. The float64 NumPy reference and the generic checks: tests/cases/parallel.py; packed sequences with
resets: tests/test_reset.py."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from tests import registry

CHUNKS = (3, None)  # chunks that do not divide T (the last one padded); one chunk (the quadratic form)


def run_all(dtype, chunks, reverse=False, T=7):
  """value_and_grad of one loss by the scan of step and by the parallel path at each chunk size, in one jit."""
  cells = {c: jaxrnn.mlstm(4, num_heads=2, chunk_size=c, param_dtype=dtype) for c in chunks}
  base = cells[chunks[0]]
  params = registry.randomize(base.init(jax.random.key(0), 3), jax.random.key(1))
  carry = registry.randomize(base.initial_carry(params, (2,)), jax.random.key(2))
  xs = jax.random.normal(jax.random.key(3), (2, T, 3), jnp.float32).astype(dtype)
  lengths = jnp.array([T, 4])

  def loss(cell, mode, p, c, x):
    final, hs = jaxrnn.unroll(cell, p, c, x, seq_lengths=lengths, reverse=reverse, mode=mode)
    w = jnp.sin(jnp.arange(hs.size, dtype=hs.dtype).reshape(hs.shape))
    return jnp.sum(hs * w) + sum(jnp.sum(jnp.tanh(a)) for a in jax.tree.leaves(final))

  grad = lambda cell, mode: jax.value_and_grad(lambda *a: loss(cell, mode, *a), argnums=(0, 1, 2))(params, carry, xs)
  return jax.jit(lambda: (grad(base, "step"), [grad(cells[c], "sequence") for c in chunks]))()


def assert_close(got, want, tol):
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    err = np.max(np.abs(a - b), initial=0.0) / max(np.max(np.abs(b), initial=0.0), 1.0)
    assert err <= tol, f"error {err:.3g} > {tol:g}"


def test_chunkwise_equals_recurrence_float64(quick_compiles):
  """Every chunk size == the scan of step within 1e-8 (values and gradients, float64). float32 (1e-5 values, 1e-4
  gradients) with lengths and reverse: tests/test_parallel_cells.py on the registry's mlstm (chunks of 2) and
  mlstm_eps0 (one chunk)."""
  want, got = run_all(jnp.float64, CHUNKS)
  for g in got:
    assert_close(g, want, 1e-8)


def test_backward_memory_grows_linearly_in_T():
  """The residuals value_and_grad keeps for the backward pass (traced, not compiled: what the compiled temp memory
  follows) with chunks of 8: doubling T doubles them; in one chunk they quadruple. The compiled temp memory at
  T = 65,536: benchmarks/mlstm_chunkwise_memory.py."""

  def residual_bytes(T, chunk):
    cell = jaxrnn.mlstm(4, chunk_size=chunk)
    params = cell.init(jax.random.key(0), 2)
    loss = lambda p, x: jnp.sum(jaxrnn.unroll(cell, p, None, x, mode="sequence")[1] ** 2)
    vjp = jax.eval_shape(lambda p, x: jax.vjp(loss, p, x)[1], params, jax.ShapeDtypeStruct((1, T, 2), jnp.float32))
    return sum(math.prod(a.shape) * a.dtype.itemsize for a in jax.tree.leaves(vjp))

  chunked = residual_bytes(512, 8) / residual_bytes(256, 8)
  assert 1.8 < chunked < 2.2, chunked
  quadratic = residual_bytes(512, None) / residual_bytes(256, None)
  assert quadratic > 3.5, quadratic  # the check can tell


def test_chunk_size_is_checked():
  with pytest.raises(ValueError, match="chunk_size must be a positive int"):
    jaxrnn.mlstm(4, chunk_size=0)


def test_chunkwise_exports_with_a_symbolic_length(quick_compiles):
  """jax.export with any T (the chunks are then chunk_size steps, the last padded): equal to unroll at T = 9."""
  from jaxrnn import export
  cell = jaxrnn.mlstm(4, chunk_size=4)
  params = cell.init(jax.random.key(0), 3)
  exported = export.export_unroll(cell, params, "b, t, 3", seq_lengths=True)
  xs, lengths = jax.random.normal(jax.random.key(1), (2, 9, 3), jnp.float32), jnp.array([9, 2], jnp.int32)
  assert_close(exported.call(jax.tree.leaves(params), xs, lengths),
               jaxrnn.unroll(cell, params, None, xs, seq_lengths=lengths), 1e-6)
