"""Depth-gated LSTM: the depth gate shut gives a plain stacked LSTM; structure of params and carry; bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from tests import registry

# Many tiny programs: compiled without XLA's backend optimisations (conftest.quick_compiles).
pytestmark = pytest.mark.usefixtures("quick_compiles")

H, F, T, B = 3, 2, 5, 2


def _setup(hidden_sizes, **kw):
  cell = jaxrnn.depth_gated_lstm(hidden_sizes, dtype=None, param_dtype=jnp.float64, **kw)
  params = registry.random_params(cell, F, jax.random.key(1))
  carry = registry.random_carry(cell, params, (B,), jax.random.key(2))
  xs = jax.random.normal(jax.random.key(3), (B, T, F), jnp.float64)
  return cell, params, carry, xs


def _stacked_lstm(params, carry, xs):
  """Layer by layer with the core jaxrnn.lstm cell: the whole sequence through layer 1, then layer 2, ..."""
  lstm = jaxrnn.lstm(H, param_dtype=jnp.float64)
  finals, inp = [], xs
  for lp, lc in zip(params, carry):
    final, inp = jaxrnn.unroll(lstm, jaxrnn.LSTMParams(w_i=lp.w_i, w_h=lp.w_h, b=lp.b), lc, inp)
    finals.append(final)
  return tuple(finals), inp


def test_shut_depth_gate_is_a_stacked_lstm():
  cell, params, carry, xs = _setup((H, H, H), peepholes=False)
  # d = sigmoid(-1e4 + finite) == 0 exactly: the lower memory cell no longer enters.
  params = tuple(p if i == 0 else p._replace(b_d=jnp.full((H,), -1e4, jnp.float64)) for i, p in enumerate(params))
  got = jaxrnn.unroll(cell, params, carry, xs)
  want = _stacked_lstm(params, carry, xs)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12), got, want)


def test_open_depth_gate_changes_the_cell_state():
  cell, params, carry, xs = _setup((H, H), peepholes=False)
  shut = tuple(p if i == 0 else p._replace(b_d=jnp.full((H,), -1e4, jnp.float64)) for i, p in enumerate(params))
  (c_open, _), (c_shut, _) = jaxrnn.unroll(cell, params, carry, xs), jaxrnn.unroll(cell, shut, carry, xs)
  np.testing.assert_allclose(c_open[0].c, c_shut[0].c, rtol=1e-12)  # the bottom layer has no depth gate
  assert np.abs(np.asarray(c_open[1].c - c_shut[1].c)).max() > 1e-3


def test_one_layer_without_peepholes_is_the_core_lstm():
  cell, params, carry, xs = _setup((H,), peepholes=False)
  got = jaxrnn.unroll(cell, params, carry, xs)
  want = _stacked_lstm(params, carry, xs)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12), got, want)


def test_params_and_carry_structure():
  cell = jaxrnn.depth_gated_lstm([4, 4])
  params = cell.init(jax.random.key(0), 3)
  assert isinstance(params, tuple) and len(params) == 2
  assert all(isinstance(p, jaxrnn.DepthGatedLSTMLayerParams) for p in params)
  assert params[0].w_i.shape == (3, 16) and params[1].w_i.shape == (4, 16)
  assert params[0].w_xd is None and params[0].b_d is None and params[0].w_ld is None
  assert params[1].w_xd.shape == (4, 4) and params[1].w_cd.shape == (4,) and params[1].b_d.shape == (4,)
  assert params[0].w_p.shape == (3, 4)
  assert params[1].b[4:8].tolist() == [1.0] * 4  # forget bias
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))
  carry = cell.initial_carry(params, (2, 5))
  assert len(carry) == 2 and all(isinstance(c, jaxrnn.LSTMCarry) and c.c.shape == (2, 5, 4) for c in carry)
  no_peep = jaxrnn.depth_gated_lstm((4, 4), peepholes=False, use_bias=False).init(jax.random.key(0), 3)
  assert no_peep[1].w_p is None and no_peep[1].b is None and no_peep[1].b_d is None


def test_gradient_reaches_the_depth_gate():
  cell, params, carry, xs = _setup((H, H))
  grads = jax.grad(lambda p: jnp.sum(jaxrnn.unroll(cell, p, carry, xs)[1] ** 2))(params)
  for name in ("w_xd", "w_cd", "w_ld", "b_d"):
    assert np.abs(np.asarray(getattr(grads[1], name))).max() > 0, name


@pytest.mark.parametrize("hidden_sizes, error, match", [
    ((), ValueError, "non-empty"),
    ((4, 3), ValueError, "equal"),
    ((4, 0), ValueError, r"hidden_sizes\[1\]"),
    (4, TypeError, "hidden_sizes"),
    ("44", TypeError, "hidden_sizes"),
    ((4, 2.5), TypeError, r"hidden_sizes\[1\]"),
])
def test_bad_hidden_sizes(hidden_sizes, error, match):
  with pytest.raises(error, match=match):
    jaxrnn.depth_gated_lstm(hidden_sizes)


def test_bad_carry_and_params():
  cell, params, carry, xs = _setup((H, H))
  x = xs[:, 0]
  with pytest.raises(TypeError, match="carry must be a tuple of 2 LSTMCarry"):
    cell.step(params, carry[0], x)
  with pytest.raises(TypeError, match="carry"):
    cell.step(params, carry[:1], x)
  with pytest.raises(TypeError, match="params"):
    cell.step(params[:1], carry, x)
  with pytest.raises(ValueError, match="use_bias"):
    jaxrnn.depth_gated_lstm((H, H), use_bias=False, depth_bias=1.0)
