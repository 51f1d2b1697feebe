"""bidirectional: float64 NumPy reference under seq_lengths, merges, errors, and a deep bidirectional stack
with dropout that trains under jit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrnn
from tests import registry
from tests.cases.core import ref_gru, ref_lstm

# Many tiny programs: compiled without XLA's backend optimisations (conftest.quick_compiles).
pytestmark = pytest.mark.usefixtures("quick_compiles")


def test_matches_numpy_reference_with_lengths():
  cell = jaxrnn.bidirectional(jaxrnn.lstm(4, param_dtype=jnp.float64), jaxrnn.gru(3, param_dtype=jnp.float64))
  params = registry.random_params(cell, 2, jax.random.key(1))
  carry = registry.random_carry(cell, params, (3,), jax.random.key(2))
  xs = jax.random.normal(jax.random.key(3), (3, 5, 2), jnp.float64)
  lengths = np.array([5, 2, 0])
  final, hs = jaxrnn.unroll(cell, params, carry, xs, seq_lengths=jnp.asarray(lengths))
  p, c, x = registry.to_numpy(params), registry.to_numpy(carry), np.asarray(xs)
  for b, n in enumerate(lengths):
    cf = jax.tree.map(lambda a: a[b], c.fwd)
    cb = jax.tree.map(lambda a: a[b], c.bwd)
    out = np.zeros((5, 7))
    for t in range(n):
      cf, out[t, :4] = ref_lstm(p.fwd, cf, x[b, t])
    for t in reversed(range(n)):
      cb, out[t, 4:] = ref_gru(True)(p.bwd, cb, x[b, t])
    np.testing.assert_allclose(hs[b], out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(final.fwd.c[b], cf.c, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(final.bwd.h[b], cb.h, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("merge,size", [("sum", (4,)), ("mean", (4,)), ("mul", (4,)), (None, (2, 4)),
                                        (lambda f, b: f - b, (4,))])
def test_merges(merge, size):
  cell = jaxrnn.bidirectional(jaxrnn.gru(4), jaxrnn.lstm(4), merge=merge)
  params = cell.init(jax.random.key(0), 3)
  _, hs = jaxrnn.unroll(cell, params, cell.initial_carry(params, (2,)), jnp.ones((2, 5, 3)),
                        seq_lengths=jnp.array([5, 3]))
  assert hs.shape == (2, 5) + size
  assert bool((hs[1, 3:] == 0).all())
  if merge is None:  # [..., 0, :] forward, [..., 1, :] backward
    _, h_f = jaxrnn.unroll(jaxrnn.gru(4), params.fwd, jaxrnn.gru(4).initial_carry(params.fwd, (2,)),
                           jnp.ones((2, 5, 3)), seq_lengths=jnp.array([5, 3]))
    np.testing.assert_allclose(hs[..., 0, :], h_f, rtol=1e-6)


def test_errors():
  cell = jaxrnn.bidirectional(jaxrnn.gru(4), jaxrnn.gru(4))
  params = cell.init(jax.random.key(0), 3)
  carry = cell.initial_carry(params, (2,))
  with pytest.raises(TypeError, match="no single step"):
    cell.step(params, carry, jnp.ones((2, 3)))
  with pytest.raises(TypeError, match="no single step"):
    jaxrnn.unroll(cell, params, carry, jnp.ones((2, 5, 3)), mode="step")
  with pytest.raises(ValueError, match="merge"):
    jaxrnn.bidirectional(jaxrnn.gru(4), jaxrnn.gru(4), merge="max")
  with pytest.raises(TypeError, match="bwd"):
    jaxrnn.bidirectional(jaxrnn.gru(4), "gru")


def test_deep_bidirectional_stack_with_dropout_trains_under_jit():
  # Target at t: the sum of the inputs from t to the end of the sequence (needs the backward direction).
  B, T, F = 3, 6, 1
  cell = jaxrnn.with_projection(jaxrnn.stack(
      jaxrnn.bidirectional(jaxrnn.lstm(4), jaxrnn.gru(4)),
      jaxrnn.bidirectional(jaxrnn.gru(4), jaxrnn.gru(4)),
      jaxrnn.bidirectional(jaxrnn.lstm(4), jaxrnn.lstm(4), merge="sum"),
      dropout=0.1), 1)
  params = cell.init(jax.random.key(0), F)
  opt = optax.adam(2e-2)
  lengths = jnp.array([6, 4, 5])
  mask = jaxrnn.length_mask(lengths, T).T[..., None]  # [B, T, 1]

  def batch(key):
    xs = jax.random.normal(key, (B, T, F)) * mask
    ys = jnp.flip(jnp.cumsum(jnp.flip(xs, 1), 1), 1) * mask
    return xs, ys

  def loss(p, key, train):
    k_x, k_d = jax.random.split(key)
    xs, ys = batch(k_x)
    carry = cell.initial_carry(p, (B,), key=k_d if train else None)
    _, hs = jaxrnn.unroll(cell, p, carry, xs, seq_lengths=lengths)
    return jnp.sum((hs - ys) ** 2) / jnp.sum(mask)

  @jax.jit
  def update(p, o, key):
    value, g = jax.value_and_grad(loss)(p, key, True)
    u, o = opt.update(g, o, p)
    return optax.apply_updates(p, u), o, value

  eval_key = jax.random.key(99)
  before = loss(params, eval_key, False)
  o = opt.init(params)
  for i in range(30):
    params, o, _ = update(params, o, jax.random.fold_in(jax.random.key(1), i))
  after = loss(params, eval_key, False)
  assert after < 0.7 * before, (before, after)
