"""The convolutional LSTM: Flax parity (1-D, 2-D, even kernels), peepholes, leading axes, argument errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from tests import registry


def flax_to_jaxrnn(variables, spatial):
  p = variables["params"]
  def reorder(a):  # Flax's gate order [i, g, f, o] -> ours [i, f, g, o]
    blocks = jnp.split(a, 4, axis=-1)
    return jnp.concatenate([blocks[k] for k in (0, 2, 1, 3)], axis=-1)

  b = reorder(p["ih"]["bias"] + p["hh"]["bias"])
  H = b.shape[0] // 4
  b = b.at[H:2 * H].add(1.0)  # Flax computes sigmoid(f + 1)
  return jaxrnn.ConvLSTMParams(w_i=reorder(p["ih"]["kernel"]), w_h=reorder(p["hh"]["kernel"]), b=b, w_c=None,
                               map_shape=jnp.zeros(spatial + (0,), jnp.float32))


@pytest.mark.parametrize("kernel_size,spatial", [((3,), (4,)), ((3, 3), (4, 4)), ((2, 3), (4, 4))],
                         ids=["1d", "2d", "2d_even"])
def test_matches_flax_conv_lstm_cell(kernel_size, spatial):
  nn = pytest.importorskip("flax.linen")
  B, T, C, H = 2, 3, 2, 3
  layer = nn.ConvLSTMCell(features=H, kernel_size=kernel_size)
  xs = jax.random.normal(jax.random.key(0), (T, B) + spatial + (C,), jnp.float32)
  c0, h0 = (0.5 * jax.random.normal(k, (B,) + spatial + (H,), jnp.float32)
            for k in jax.random.split(jax.random.key(1)))
  variables = layer.init(jax.random.key(2), (c0, h0), xs[0])
  variables = {"params": registry.randomize(variables["params"], jax.random.key(3))}
  cell = jaxrnn.conv_lstm(H, kernel_size)
  params = flax_to_jaxrnn(variables, spatial)
  ours = cell.init(jax.random.key(0), spatial + (C,))
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, ours)
  flax_carry, carry = (c0, h0), jaxrnn.ConvLSTMCarry(h=h0, c=c0)
  for t in range(T):
    flax_carry, out_flax = layer.apply(variables, flax_carry, xs[t])
    carry, out = cell(params, carry, xs[t])
    assert float(jnp.max(jnp.abs(out - out_flax))) <= 1e-5
    assert float(jnp.max(jnp.abs(carry.c - flax_carry[0]))) <= 1e-5


def test_peephole_params_and_effect():
  cell = jaxrnn.conv_lstm(2, (3,), peephole=True)
  params = cell.init(jax.random.key(0), (4, 1))
  assert params.w_c.shape == (3, 4, 2) and params.map_shape.shape == (4, 0)
  np.testing.assert_array_equal(params.w_c, 0.0)  # starts as the plain ConvLSTM
  plain = jaxrnn.conv_lstm(2, (3,))
  carry = jaxrnn.ConvLSTMCarry(h=jnp.ones((4, 2)), c=jnp.ones((4, 2)))
  x = jnp.ones((4, 1))
  np.testing.assert_array_equal(cell(params, carry, x)[1], plain(params._replace(w_c=None), carry, x)[1])
  assert not np.allclose(cell(params._replace(w_c=params.w_c + 1), carry, x)[1], cell(params, carry, x)[1])


def test_any_leading_axes_and_input_transform():
  cell = jaxrnn.conv_lstm(2, (3, 3))
  params = registry.random_params(cell, (4, 4, 1), jax.random.key(1))
  carry = cell.initial_carry(params, (2, 3))
  assert carry.h.shape == (2, 3, 4, 4, 2)
  x = jax.random.normal(jax.random.key(2), (2, 3, 4, 4, 1))
  new, h = cell(params, carry, x)
  _, h_one = cell(params, jax.tree.map(lambda a: a[1, 2], carry), x[1, 2])
  np.testing.assert_allclose(h[1, 2], h_one, rtol=1e-6, atol=1e-6)
  u = cell.input_transform(params, x)
  np.testing.assert_array_equal(cell.step_transformed(params, carry, u)[1], h)


def test_arguments_are_checked():
  with pytest.raises(TypeError, match="kernel_size must be a tuple of 1 or 2 positive ints"):
    jaxrnn.conv_lstm(2, 3)
  with pytest.raises(ValueError, match="kernel_size must have 1 or 2 entries"):
    jaxrnn.conv_lstm(2, (3, 3, 3))
  with pytest.raises(ValueError, match=r"kernel_size\[1\] must be a positive int, got 0"):
    jaxrnn.conv_lstm(2, (3, 0))
  with pytest.raises(ValueError, match="features must be a positive int"):
    jaxrnn.conv_lstm(0, (3,))
  with pytest.raises(ValueError, match="forget_bias=1.0 needs a bias"):
    jaxrnn.conv_lstm(2, (3,), use_bias=False, forget_bias=1.0)
  cell = jaxrnn.conv_lstm(2, (3, 3))
  with pytest.raises(ValueError, match=r"input_size must be the per-example map shape \(H, W, C\)"):
    cell.init(jax.random.key(0), 2)
  with pytest.raises(ValueError, match=r"input_size must be the per-example map shape"):
    cell.init(jax.random.key(0), (4, 2))
  params = cell.init(jax.random.key(0), (4, 4, 2))
  with pytest.raises(ValueError, match=r"x must have shape \[\*B, 4, 4, 2\]"):
    cell(params, cell.initial_carry(params, (1,)), jnp.zeros((1, 5, 4, 2)))
  with pytest.raises(ValueError, match="carry.h must have shape"):
    cell(params, cell.initial_carry(params, (2,)), jnp.zeros((1, 4, 4, 2)))
