"""The unroll engine: layouts, seq_lengths, modes, errors, and compile time that does not grow with T."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from tests.registry import counting

# Many tiny programs: compiled without XLA's backend optimisations (conftest.quick_compiles).
pytestmark = pytest.mark.usefixtures("quick_compiles")


def make(hidden=4, features=3, batch_shape=(2,)):
  cell = jaxrnn.lstm(hidden)
  params = cell.init(jax.random.key(0), features)
  return cell, params, cell.initial_carry(params, batch_shape)


def test_unbatched_sequence():
  cell, params, carry = make(batch_shape=())
  xs = jax.random.normal(jax.random.key(1), (5, 3), jnp.float32)
  final, hs = jaxrnn.unroll(cell, params, carry, xs, seq_lengths=jnp.array(3))
  ref_final, ref_hs = jaxrnn.static_unroll(cell, params, carry, xs[:3])
  np.testing.assert_allclose(hs[:3], ref_hs, rtol=1e-6, atol=1e-6)
  assert np.all(np.asarray(hs[3:]) == 0)
  np.testing.assert_allclose(final.c, ref_final.c, rtol=1e-6, atol=1e-6)


def test_final_carry_is_carry_at_last_valid_step():
  cell, params, carry = make()
  xs = jax.random.normal(jax.random.key(1), (2, 6, 3), jnp.float32)
  final, hs, carries = jaxrnn.unroll(cell, params, carry, xs, seq_lengths=jnp.array([6, 2]),
                                     return_all_carries=True)
  np.testing.assert_allclose(final.h[1], carries.h[1, 1], rtol=1e-6)
  np.testing.assert_allclose(final.h[1], hs[1, 1], rtol=1e-6)
  assert carries.c.shape == (2, 6, 4)
  # Padded steps hold the frozen final carry.
  np.testing.assert_array_equal(carries.c[1, 2:], jnp.broadcast_to(final.c[1], (4, 4)))


def test_reverse_final_carry_is_after_first_step():
  cell, params, carry = make()
  xs = jax.random.normal(jax.random.key(1), (2, 6, 3), jnp.float32)
  final, hs, carries = jaxrnn.unroll(cell, params, carry, xs, seq_lengths=jnp.array([6, 3]), reverse=True,
                                     return_all_carries=True)
  np.testing.assert_allclose(final.h, hs[:, 0], rtol=1e-6)
  np.testing.assert_allclose(final.c, carries.c[:, 0], rtol=1e-6)


@pytest.mark.parametrize("bad", [[-1, 2], [2, 7]])
def test_seq_lengths_out_of_range(bad):
  cell, params, carry = make()
  xs = jnp.zeros((2, 6, 3), jnp.float32)
  with pytest.raises(ValueError, match=r"seq_lengths must lie in \[0, 6\]"):
    jaxrnn.unroll(cell, params, carry, xs, seq_lengths=jnp.array(bad))


def test_seq_lengths_shape_and_dtype():
  cell, params, carry = make()
  xs = jnp.zeros((2, 6, 3), jnp.float32)
  with pytest.raises(ValueError, match=r"seq_lengths must have the batch shape of xs \(2,\), got shape \(3,\)"):
    jaxrnn.unroll(cell, params, carry, xs, seq_lengths=jnp.array([1, 2, 3]))
  with pytest.raises(TypeError, match="seq_lengths must be an integer array, got dtype float"):
    jaxrnn.unroll(cell, params, carry, xs, seq_lengths=jnp.array([1.0, 2.0]))


def test_seq_lengths_accept_python_lists_and_clip_under_jit():
  cell, params, carry = make()
  xs = jax.random.normal(jax.random.key(1), (2, 6, 3), jnp.float32)
  a = jaxrnn.unroll(cell, params, carry, xs, seq_lengths=[6, 2])
  b = jax.jit(lambda l: jaxrnn.unroll(cell, params, carry, xs, seq_lengths=l))(jnp.array([9, 2]))
  np.testing.assert_allclose(a[1], b[1], rtol=1e-6)


def test_bad_xs():
  cell, params, carry = make()
  with pytest.raises(TypeError, match="xs must be a real floating-point array, got dtype int"):
    jaxrnn.unroll(cell, params, carry, jnp.zeros((2, 6, 3), jnp.int32))
  with pytest.raises(ValueError, match=r"xs must have shape \[\*B, T, \*F\]"):
    jaxrnn.unroll(cell, params, carry, jnp.zeros((3,), jnp.float32))
  with pytest.raises(ValueError, match="carry.h must have shape"):
    jaxrnn.unroll(cell, params, carry, jnp.zeros((5, 6, 3), jnp.float32))
  with pytest.raises(ValueError, match="mode must be one of"):
    jaxrnn.unroll(cell, params, carry, jnp.zeros((2, 6, 3), jnp.float32), mode="fast")
  with pytest.raises(ValueError, match="mode='sequence' needs a cell with a sequence path"):
    jaxrnn.unroll(cell._replace(sequence=None), params, carry, jnp.zeros((2, 6, 3), jnp.float32), mode="sequence")
  with pytest.raises(TypeError, match="cell must be a jaxrnn.Cell"):
    jaxrnn.unroll(lambda *a: a, params, carry, jnp.zeros((2, 6, 3), jnp.float32))


def test_sequence_path_is_used_and_masked():
  """A cell's own sequence path runs in mode auto/sequence and sees reversed inputs and the mask."""
  base = jaxrnn.gru(4)
  seen = {}

  def sequence(params, carry, xs, mask, options):
    seen["mask"] = mask
    seen["options"] = options
    return jaxrnn.unroll(base, params, carry, xs, seq_lengths=None if mask is None else mask.sum(0),
                         time_major=True, mode="step")

  cell = base._replace(sequence=jaxrnn.SequencePath(sequence, frozenset({"unroll"})))
  params = cell.init(jax.random.key(0), 3)
  carry = cell.initial_carry(params, (2,))
  xs = jax.random.normal(jax.random.key(1), (2, 5, 3), jnp.float32)
  lengths = jnp.array([5, 2])
  for reverse in (False, True):
    got = jaxrnn.unroll(cell, params, carry, xs, seq_lengths=lengths, reverse=reverse, mode="sequence")
    want = jaxrnn.unroll(cell, params, carry, xs, seq_lengths=lengths, reverse=reverse, mode="step")
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
  assert seen["mask"].shape == (5, 2)
  jaxrnn.unroll(cell, params, carry, xs, unroll=3, mode="sequence")
  assert seen["options"] == jaxrnn.RunOptions(unroll=3)
  with pytest.raises(ValueError, match=r"does not honour the run option\(s\) \['remat'\]"):
    jaxrnn.unroll(cell, params, carry, xs, remat=True, mode="sequence")
  with pytest.raises(TypeError, match="cell.sequence must be a jaxrnn.SequencePath"):
    jaxrnn.unroll(base._replace(sequence=sequence), params, carry, xs)


def _compile_seconds(num_steps):
  cell = jaxrnn.lstm(32)
  params = cell.init(jax.random.key(0), 16)
  carry = cell.initial_carry(params, (4,))
  xs = jax.ShapeDtypeStruct((4, num_steps, 16), jnp.float32)

  def loss(p, x):
    final, hs = jaxrnn.unroll(cell, p, carry, x, seq_lengths=jnp.full((4,), num_steps))
    return jnp.mean(hs ** 2) + jnp.mean(final.c)

  lowered = jax.jit(jax.grad(loss)).lower(params, xs)
  start = time.perf_counter()
  lowered.compile()
  return time.perf_counter() - start, lowered.as_text()


def test_compile_does_not_grow_with_sequence_length():
  short_s, short_hlo = _compile_seconds(16)
  long_s, long_hlo = _compile_seconds(4096)
  # The program is the same size whatever T (the step is traced once, inside one loop)...
  assert abs(len(long_hlo) - len(short_hlo)) < 0.02 * len(short_hlo), (len(short_hlo), len(long_hlo))
  # ... and compiles in about the same time (generous bound: the machine is shared and noisy).
  assert long_s < 3 * short_s + 1.0, (short_s, long_s)


def test_eager_calls_compile_once():
  """Outside jit, a second call with the same cell, settings and shapes reuses the first call's program: the step
  is not traced again (before, lax.scan compiled its body on every eager call, 110-800 ms each)."""
  cell, traces = counting(jaxrnn.lstm(4))
  params = cell.init(jax.random.key(0), 3)
  xs = jax.random.normal(jax.random.key(1), (2, 5, 3))
  lengths = jnp.array([5, 2])
  first = jaxrnn.unroll(cell, params, None, xs, seq_lengths=lengths)
  once = traces[0]
  again = jaxrnn.unroll(cell, params, None, xs + 1, seq_lengths=jnp.array([3, 4]))
  assert traces[0] == once
  reference = jaxrnn.static_unroll(cell, params, cell.initial_carry(params, (2,)), xs + 1,
                                   seq_lengths=jnp.array([3, 4]))
  np.testing.assert_allclose(again[1], reference[1], atol=1e-6)
  # Concrete lengths are still checked on every call (eagerly, before the program runs).
  with pytest.raises(ValueError, match=r"seq_lengths must lie in \[0, 5\]"):
    jaxrnn.unroll(cell, params, None, xs, seq_lengths=jnp.array([6, 2]))
  # A new shape, a new setting or a new cell traces again; unroll=True (all steps) is not unroll=1.
  jaxrnn.unroll(cell, params, None, xs[:, :4], seq_lengths=jnp.array([4, 2]))
  assert traces[0] > once
  for kw in ({"unroll": True}, {"reverse": True}, {"remat": True}):
    count = traces[0]
    out = jaxrnn.unroll(cell, params, None, xs, seq_lengths=lengths, **kw)
    assert traces[0] > count, kw
    if "reverse" not in kw:
      np.testing.assert_allclose(out[1], first[1], atol=1e-6)
  other, other_traces = counting(jaxrnn.lstm(4))
  jaxrnn.unroll(other, params, None, xs, seq_lengths=lengths)
  assert other_traces[0] > 0
  # Gradients outside jit reuse their program too.
  grad = lambda: jax.grad(lambda p: jnp.sum(jaxrnn.unroll(cell, p, None, xs)[1]))(params)
  grad()
  count = traces[0]
  grad()
  assert traces[0] == count
