"""reset_on: one unroll over concatenated episodes equals running the episodes separately; (x, should_reset) inputs
through every unroll option."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn


def episodes():
  starts = {0: [0, 2], 1: [0, 4, 5]}  # episode starts per batch element
  flags = np.zeros((2, 6), bool)
  for b, s in starts.items():
    flags[b, s[1:]] = True
  return starts, jnp.asarray(flags)


@pytest.mark.parametrize("learned", [False, True], ids=["zeros", "learned"])
def test_equals_separate_episodes(learned):
  base = jaxrnn.learned_initial_carry(jaxrnn.lstm(4)) if learned else jaxrnn.lstm(4)
  cell = jaxrnn.reset_on(base)
  params = cell.init(jax.random.key(0), 3)
  if learned:
    params = params._replace(carry=jax.tree.map(lambda a: a + 0.5, params.carry))
  xs = jax.random.normal(jax.random.key(1), (2, 6, 3))
  starts, flags = episodes()
  # A carry from the middle of some other stream: the flag at t=0 is off, so the first episode continues it.
  carry = jax.tree.map(lambda a: a + 0.1, base.initial_carry(params, (2,)))
  final, hs = jaxrnn.unroll(cell, params, carry, (xs, flags))
  for b, s in starts.items():
    bounds = s + [6]
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
      c0 = jax.tree.map(lambda a: a[b], carry) if i == 0 else base.initial_carry(params)
      c, h = jaxrnn.unroll(base, params, c0, xs[b, lo:hi])
      np.testing.assert_allclose(hs[b, lo:hi], h, rtol=1e-5, atol=1e-6)
    for got, want in zip(jax.tree.leaves(jax.tree.map(lambda a: a[b], final)), jax.tree.leaves(c)):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_pytree_inputs_through_every_unroll_option():
  """(xs, should_reset) with lengths, reverse, time-major, hoist, remat, unroll, jit and vmap == the Python loop."""
  cell = jaxrnn.reset_on(jaxrnn.gru(4))
  params = cell.init(jax.random.key(0), 3)
  xs = jax.random.normal(jax.random.key(1), (2, 6, 3))
  _, flags = episodes()
  flags = flags.astype(jnp.float32)  # numeric flags: nonzero means reset
  lengths = jnp.array([6, 4])
  for reverse in (False, True):
    want = jaxrnn.static_unroll(cell, params, None, (xs, flags), seq_lengths=lengths, reverse=reverse)
    for kw in ({}, {"hoist": True}, {"hoist": False}, {"remat": 2}, {"unroll": 3}):
      run = jax.jit(lambda x, f: jaxrnn.unroll(cell, params, None, (x, f), seq_lengths=lengths, reverse=reverse,
                                               **kw))
      for got, w in zip(jax.tree.leaves(run(xs, flags)), jax.tree.leaves(want)):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
    tm = jaxrnn.unroll(cell, params, None, (jnp.swapaxes(xs, 0, 1), flags.T), seq_lengths=lengths,
                       reverse=reverse, time_major=True)
    np.testing.assert_allclose(jnp.swapaxes(tm[1], 0, 1), want[1], rtol=1e-5, atol=1e-6)
    one = jax.vmap(lambda x, f, n: jaxrnn.unroll(cell, params, None, (x, f), seq_lengths=n, reverse=reverse)[1])
    np.testing.assert_allclose(one(xs, flags, lengths), want[1], rtol=1e-5, atol=1e-6)


def test_gradient_flows_into_learned_initial_carry():
  cell = jaxrnn.reset_on(jaxrnn.learned_initial_carry(jaxrnn.gru(3)))
  params = cell.init(jax.random.key(0), 2)
  xs = (jnp.ones((4, 2)), jnp.array([False, False, True, False]))

  def loss(p):
    return jnp.sum(jaxrnn.unroll(cell, p, cell.initial_carry(p), xs)[1])

  assert float(jnp.abs(jax.grad(loss)(params).carry.h).sum()) > 0


def test_errors():
  cell = jaxrnn.reset_on(jaxrnn.gru(3))
  params = cell.init(jax.random.key(0), 2)
  with pytest.raises(TypeError, match=r"x of reset_on\(gru\) must be the pair \(x, should_reset\).*shape \(5, 2\)"):
    cell.step(params, cell.initial_carry(params, (5,)), jnp.ones((5, 2)))
  with pytest.raises(ValueError, match=r"xs of reset_on\(gru\) must have the structure of its inputs"):
    jaxrnn.unroll(cell, params, None, jnp.ones((5, 4, 2)))
  with pytest.raises(ValueError, match=r"should_reset of reset_on\(gru\) must have the batch shape of the carry"):
    cell.step(params, cell.initial_carry(params, (5,)), (jnp.ones((5, 2)), jnp.zeros((4,), bool)))
  with pytest.raises(TypeError, match="should_reset of reset_on\\(gru\\) must be bool or numeric"):
    cell.step(params, cell.initial_carry(params), (jnp.ones(2), jax.random.key(0)))
  with pytest.raises(ValueError, match="every leaf of xs must have the same time and batch axes"):
    jaxrnn.unroll(cell, params, None, (jnp.ones((5, 4, 2)), jnp.zeros((5, 3), bool)))


def test_with_reset_flags_is_deprecated():
  with pytest.warns(DeprecationWarning, match="reset_on takes the inputs"):
    xs, flags = jaxrnn.with_reset_flags(jnp.ones((2, 5, 3)), jnp.zeros((2, 5), bool))
  assert xs.shape == (2, 5, 3) and flags.shape == (2, 5)
  with pytest.raises(ValueError, match="should_reset"), pytest.warns(DeprecationWarning):
    jaxrnn.with_reset_flags(jnp.ones((2, 5, 3)), jnp.zeros((2,), bool))
