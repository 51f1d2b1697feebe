"""Attention mechanisms: masked weights, float64 NumPy references of each score, projection outside the step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from tests import registry
from tests.cases.attention import np_additive_score, np_luong_score, np_masked_softmax

B, S, D, Q = 3, 5, 3, 4
MASK = np.array([[True] * 5, [True, True, False, False, False], [False] * 5])  # full, prefix, empty


def np_dot_score(scale):
  def score(p, keys, query, prev):
    e = keys @ query
    return e / np.sqrt(keys.shape[-1]) if scale else e
  return score


def np_project(name):
  return {
      "additive": lambda p, m: m @ p.w_memory + p.b,
      "location": lambda p, m: m @ p.w_memory + p.b,
      "luong": lambda p, m: m @ p.w,
      "scaled_luong": lambda p, m: m @ p.w,
      "dot": lambda p, m: m,
      "scaled_dot": lambda p, m: m,
  }[name]


MECHS = {
    "additive": (lambda: jaxrnn.additive_attention(6, param_dtype=jnp.float64), np_additive_score, Q),
    "location": (lambda: jaxrnn.additive_attention(6, location_kernel_size=3, param_dtype=jnp.float64),
                 np_additive_score, Q),
    "luong": (lambda: jaxrnn.luong_attention(param_dtype=jnp.float64), np_luong_score(False), Q),
    "scaled_luong": (lambda: jaxrnn.luong_attention(scale=True, param_dtype=jnp.float64), np_luong_score(True), Q),
    "dot": (lambda: jaxrnn.dot_attention(scale=False), np_dot_score(False), D),
    "scaled_dot": (lambda: jaxrnn.dot_attention(), np_dot_score(True), D),
}


def setup(name):
  make, np_score, q = MECHS[name]
  mech = make()
  k = jax.random.split(jax.random.key(0), 4)
  params = registry.randomize(mech.init(k[0], q, D), k[1])
  memory = jax.random.normal(k[2], (B, S, D), jnp.float64)
  query = jax.random.normal(k[3], (B, q), jnp.float64)
  prev = jax.nn.softmax(jax.random.normal(k[3], (B, S), jnp.float64))
  return mech, params, memory, query, prev, np_score


@pytest.mark.parametrize("name", sorted(MECHS))
def test_matches_float64_numpy_reference(name):
  mech, params, memory, query, prev, np_score = setup(name)
  keys = mech.project_memory(params, memory)
  context, weights = jaxrnn.attend(mech, params, query, keys, memory, jnp.asarray(MASK), prev)
  p = registry.to_numpy(params)
  for b in range(B):
    m = np.asarray(memory[b])
    k_np = np_project(name)(p, m)
    np.testing.assert_allclose(np.asarray(keys[b]), k_np, rtol=1e-10, atol=1e-12)
    w = np_masked_softmax(np_score(p, k_np, np.asarray(query[b]), np.asarray(prev[b])), MASK[b])
    np.testing.assert_allclose(np.asarray(weights[b]), w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(context[b]), w @ m, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(MECHS))
def test_weights_sum_to_one_and_are_exactly_zero_when_masked(name):
  mech, params, memory, query, prev, _ = setup(name)
  memory = memory.astype(jnp.float32)
  big = 1e3 * memory  # large scores must not leak into masked positions
  for mem in (memory, big):
    keys = mech.project_memory(params, mem)
    _, w = jaxrnn.attend(mech, params, query.astype(jnp.float32), keys, mem, jnp.asarray(MASK), prev)
    w = np.asarray(w)
    assert np.all(w[~MASK] == 0.0)
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(w[:2].sum(-1), 1.0, rtol=1e-6)
    assert w[2].sum() == 0.0  # no valid position: all zeros, no NaN


def test_masked_softmax_gradient_is_finite_with_empty_rows():
  g = jax.grad(lambda s: jnp.sum(jaxrnn.masked_softmax(s, jnp.asarray(MASK)) * jnp.arange(5.0).reshape(1, 5)))(
      jnp.ones((B, S)))
  assert np.all(np.isfinite(np.asarray(g))) and np.all(np.asarray(g)[~MASK] == 0)


def test_last_position_attention_picks_last_valid():
  mech = jaxrnn.last_position_attention()
  memory = jnp.arange(B * S * D, dtype=jnp.float32).reshape(B, S, D)
  params = mech.init(jax.random.key(0), Q, D)
  ctx, w = jaxrnn.attend(mech, params, jnp.ones((B, Q)), mech.project_memory(params, memory), memory,
                         jnp.asarray(MASK))
  np.testing.assert_array_equal(np.asarray(w[0]), [0, 0, 0, 0, 1])
  np.testing.assert_array_equal(np.asarray(w[1]), [0, 1, 0, 0, 0])
  np.testing.assert_array_equal(np.asarray(ctx[1]), np.asarray(memory[1, 1]))


def test_bad_inputs():
  with pytest.raises(ValueError, match="location_kernel_size"):
    jaxrnn.additive_attention(4, location_kernel_size=2)
  with pytest.raises(ValueError, match="query_size == memory_size"):
    jaxrnn.dot_attention().init(jax.random.key(0), 3, 4)
  mech, params, memory, query, prev, _ = setup("additive")
  keys = mech.project_memory(params, memory)
  with pytest.raises(ValueError, match="query"):
    jaxrnn.attend(mech, params, jnp.ones((B, Q + 1)), keys, memory)
  with pytest.raises(ValueError, match="memory"):
    mech.project_memory(params, jnp.ones((B, S, D + 1)))
