"""reset_on: one unroll over concatenated episodes equals running the episodes separately."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn


@pytest.mark.parametrize("learned", [False, True], ids=["zeros", "learned"])
def test_equals_separate_episodes(learned):
  base = jaxrnn.learned_initial_carry(jaxrnn.lstm(4)) if learned else jaxrnn.lstm(4)
  cell = jaxrnn.reset_on(base)
  params = cell.init(jax.random.key(0), 3 + 1)
  if learned:
    params = params._replace(carry=jax.tree.map(lambda a: a + 0.5, params.carry))
  xs = jax.random.normal(jax.random.key(1), (2, 6, 3))
  starts = {0: [0, 2], 1: [0, 4, 5]}  # episode starts per batch element
  flags = np.zeros((2, 6), bool)
  for b, s in starts.items():
    flags[b, s[1:]] = True
  # A carry from the middle of some other stream: the flag at t=0 is off, so the first episode continues it.
  carry = jax.tree.map(lambda a: a + 0.1, base.initial_carry(params, (2,)))
  final, hs = jaxrnn.unroll(cell, params, carry, jaxrnn.with_reset_flags(xs, jnp.asarray(flags)))
  for b, s in starts.items():
    bounds = s + [6]
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
      c0 = jax.tree.map(lambda a: a[b], carry) if i == 0 else base.initial_carry(params)
      c, h = jaxrnn.unroll(base, params, c0, xs[b, lo:hi])
      np.testing.assert_allclose(hs[b, lo:hi], h, rtol=1e-5, atol=1e-6)
    for got, want in zip(jax.tree.leaves(jax.tree.map(lambda a: a[b], final)), jax.tree.leaves(c)):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_gradient_flows_into_learned_initial_carry():
  cell = jaxrnn.reset_on(jaxrnn.learned_initial_carry(jaxrnn.gru(3)))
  params = cell.init(jax.random.key(0), 2 + 1)
  xs = jaxrnn.with_reset_flags(jnp.ones((4, 2)), jnp.array([False, False, True, False]))

  def loss(p):
    return jnp.sum(jaxrnn.unroll(cell, p, cell.initial_carry(p), xs)[1])

  assert float(jnp.abs(jax.grad(loss)(params).carry.h).sum()) > 0


def test_errors():
  cell = jaxrnn.reset_on(jaxrnn.gru(3))
  with pytest.raises(ValueError, match="reset flag"):
    cell.init(jax.random.key(0), 1)
  with pytest.raises(ValueError, match="should_reset"):
    jaxrnn.with_reset_flags(jnp.ones((2, 5, 3)), jnp.zeros((2,), bool))
