"""Grid LSTM: the block's equations, tied weights, the 1-D grid as a feed-forward net, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn
from jaxrnn.cells import grid_lstm as grid_lib
from tests import registry
from tests.cases.deep_cells import _grid_transform

# Many tiny programs: compiled without XLA's backend optimisations (conftest.quick_compiles).
pytestmark = pytest.mark.usefixtures("quick_compiles")

H, F, T, B, L = 3, 2, 4, 2, 2


def _setup(cell):
  params = registry.random_params(cell, F, jax.random.key(1))
  carry = registry.random_carry(cell, params, (B,), jax.random.key(2))
  xs = jax.random.normal(jax.random.key(3), (B, T, F), jnp.float64)
  return params, carry, xs


def _close(a, b, tol=1e-12):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol), a, b)


def test_block_output_is_tanh_of_gated_memory():
  p = registry.randomize(jaxrnn.GridLSTMTransformParams(w=jnp.zeros((2 * H, 4 * H)), b=jnp.zeros(4 * H)),
                         jax.random.key(0))
  hs, m = jax.random.normal(jax.random.key(1), (2 * H,)), jax.random.normal(jax.random.key(2), (H,))
  h_new, m_new = grid_lib.grid_lstm_block(p, hs, m)
  z = np.asarray(hs, np.float64) @ np.asarray(p.w, np.float64) + np.asarray(p.b, np.float64)
  sig = lambda v: 1 / (1 + np.exp(-v))
  want_m = sig(z[H:2 * H]) * np.asarray(m) + sig(z[:H]) * np.tanh(z[2 * H:3 * H])
  np.testing.assert_allclose(m_new, want_m, rtol=1e-5)
  np.testing.assert_allclose(h_new, np.tanh(sig(z[3 * H:]) * want_m), rtol=1e-5)


def test_tied_weights_share_params():
  tied = jaxrnn.grid_lstm(H, 3, tied=True, param_dtype=jnp.float64)
  untied = jaxrnn.grid_lstm(H, 3, param_dtype=jnp.float64)
  params, carry, xs = _setup(tied)
  assert len(params.blocks) == 1 and len(untied.init(jax.random.key(0), F).blocks) == 3
  copied = params._replace(blocks=params.blocks * 3)
  _close(jaxrnn.unroll(tied, params, carry, xs), jaxrnn.unroll(untied, copied, carry, xs))
  # The tied block's gradient is the sum of the per-depth gradients of the untied copy.
  loss = lambda cell: lambda p: jnp.sum(jaxrnn.unroll(cell, p, carry, xs)[1] ** 2)
  g_tied = jax.grad(loss(tied))(params)
  g_untied = jax.grad(loss(untied))(copied)
  summed = jax.tree.map(lambda *g: sum(g), *g_untied.blocks)
  _close(g_tied.blocks[0], summed, tol=1e-10)
  with pytest.raises(ValueError, match="params.blocks"):
    tied.step(copied, carry, xs[:, 0])


def test_depth_priority_changes_the_output():
  prio = jaxrnn.grid_lstm(H, L, param_dtype=jnp.float64)
  plain = jaxrnn.grid_lstm(H, L, depth_priority=False, param_dtype=jnp.float64)
  params, carry, xs = _setup(prio)
  (c1, h1), (c2, h2) = jaxrnn.unroll(prio, params, carry, xs), jaxrnn.unroll(plain, params, carry, xs)
  _close(c1[0], c2[0])  # the time transform of the first block does not depend on the priority
  assert np.abs(np.asarray(h1 - h2)).max() > 1e-3


def test_structure():
  cell = jaxrnn.grid_lstm(4, 3)
  params = cell.init(jax.random.key(0), 3)
  assert params.w_x.shape == (3, 4) and params.b_x.shape == (4,) and len(params.blocks) == 3
  blk = params.blocks[0]
  assert blk.time.w.shape == (8, 16) and blk.depth.w.shape == (8, 16) and blk.time.b[4:8].tolist() == [1.0] * 4
  carry = cell.initial_carry(params, (2, 5))
  assert len(carry) == 3 and all(isinstance(c, jaxrnn.GridLSTMCarry) and c.m.shape == (2, 5, 4) for c in carry)


@pytest.mark.parametrize("args, error, match", [
    ((0, 2), ValueError, "hidden_size"),
    ((3, 0), ValueError, "num_layers"),
    (("3", 2), TypeError, "hidden_size"),
])
def test_grid_lstm_bad_hyperparameters(args, error, match):
  with pytest.raises(error, match=match):
    jaxrnn.grid_lstm(*args)


def test_grid_lstm_bad_carry():
  cell = jaxrnn.grid_lstm(H, L)
  params, carry, xs = _setup(cell)
  with pytest.raises(TypeError, match="carry must be a tuple of 2 GridLSTMCarry"):
    cell.step(params, carry[0], xs[:, 0])


# The 1-D grid: a gated deep feed-forward net.

def ref_grid_1d(p, x, tied, K):
  h = x @ p.w_x + (p.b_x if p.b_x is not None else 0.0)
  m = np.zeros_like(h)
  for k in range(K):
    h, m = _grid_transform(p.blocks[0 if tied else k], h, m)
  return h


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_grid_1d_matches_reference_and_vmap(tied):
  net = grid_lib.grid_lstm_1d(H, 3, tied=tied, param_dtype=jnp.float64)
  params = registry.random_params(net, F, jax.random.key(1))
  assert len(params.blocks) == (1 if tied else 3) and params.blocks[0].w.shape == (H, 4 * H)
  x = jax.random.normal(jax.random.key(2), (2, 3, F), jnp.float64)  # two batch axes
  h = net.apply(params, x)
  assert h.shape == (2, 3, H) and h.dtype == jnp.float64
  p_np = registry.to_numpy(params)
  want = np.stack([np.stack([ref_grid_1d(p_np, np.asarray(x[i, j]), tied, 3) for j in range(3)]) for i in range(2)])
  np.testing.assert_allclose(h, want, rtol=1e-12, atol=1e-12)
  _close(jax.vmap(jax.vmap(net.apply, (None, 0)), (None, 0))(params, x), h)
  assert net.apply(params, x[0, 0]).shape == (H,)


def test_grid_1d_gradients_and_dtypes():
  net = grid_lib.grid_lstm_1d(H, 2, param_dtype=jnp.float64)
  params = registry.random_params(net, F, jax.random.key(1))
  x = jax.random.normal(jax.random.key(2), (B, F), jnp.float64)
  check_grads(lambda p, x: jnp.sum(jnp.sin(net.apply(p, x))), (params, x), order=1, modes=("rev",),
              atol=1e-5, rtol=1e-5)
  net32 = grid_lib.grid_lstm_1d(H, 2)
  p32 = net32.init(jax.random.key(0), F)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(p32))
  assert jax.jit(net32.apply)(p32, x.astype(jnp.float32)).dtype == jnp.float32


def test_grid_1d_bad_input():
  net = grid_lib.grid_lstm_1d(H, 2)
  params = net.init(jax.random.key(0), F)
  with pytest.raises(ValueError, match="x"):
    net.apply(params, jnp.zeros((B, F + 1)))
  with pytest.raises(TypeError, match="x"):
    net.apply(params, jnp.zeros((B, F), jnp.int32))
  with pytest.raises(ValueError, match="params.blocks"):
    grid_lib.grid_lstm_1d(H, 2, tied=True).apply(params, jnp.zeros((B, F)))
  with pytest.raises(ValueError, match="num_blocks"):
    grid_lib.grid_lstm_1d(H, 0)
  with pytest.raises(TypeError, match="key"):
    net.init(0, F)


def test_nd_grid_block_matches_numpy():
  rng = np.random.default_rng(0)
  H, N = 3, 3
  block = grid_lib.grid_block(H, num_dims=N, param_dtype=jnp.float64)
  params = registry.randomize(block.init(jax.random.key(0)), jax.random.key(1))
  hs = tuple(jnp.asarray(rng.standard_normal((2, H))) for _ in range(N))
  ms = tuple(jnp.asarray(rng.standard_normal((2, H))) for _ in range(N))
  got_h, got_m = block.apply(params, hs, ms)
  sig = lambda z: 1 / (1 + np.exp(-z))
  joined = np.concatenate([np.asarray(h) for h in hs], -1)
  for d in range(N):
    z = joined @ np.asarray(params[d].w) + np.asarray(params[d].b)
    u, f, c, o = np.split(z, 4, -1)
    m = sig(f) * np.asarray(ms[d]) + sig(u) * np.tanh(c)
    np.testing.assert_allclose(got_m[d], m, rtol=1e-12)
    np.testing.assert_allclose(got_h[d], np.tanh(sig(o) * m), rtol=1e-12)
  with pytest.raises(ValueError, match="hs must be a tuple of num_dims=3 entries"):
    block.apply(params, hs[:2], ms)
  with pytest.raises(ValueError, match=r"ms\[1\] must have shape"):
    block.apply(params, hs, (ms[0], ms[1][:1], ms[2]))
