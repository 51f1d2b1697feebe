"""The convolutional LSTM: Flax parity (1-D, 2-D, even kernels), any map size, peepholes, leading axes, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from tests import registry

pytestmark = pytest.mark.usefixtures("quick_compiles")  # tiny programs, each run once or twice


def flax_to_jaxrnn(variables):
  p = variables["params"]
  def reorder(a):  # Flax's gate order [i, g, f, o] -> ours [i, f, g, o]
    blocks = jnp.split(a, 4, axis=-1)
    return jnp.concatenate([blocks[k] for k in (0, 2, 1, 3)], axis=-1)

  b = reorder(p["ih"]["bias"] + p["hh"]["bias"])
  H = b.shape[0] // 4
  b = b.at[H:2 * H].add(1.0)  # Flax computes sigmoid(f + 1)
  return jaxrnn.ConvLSTMParams(w_i=reorder(p["ih"]["kernel"]), w_h=reorder(p["hh"]["kernel"]), b=b, w_c=None)


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
  params = flax_to_jaxrnn(variables)
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
  assert params.w_c.shape == (3, 4, 2)
  np.testing.assert_array_equal(params.w_c, 0.0)  # starts as the plain ConvLSTM
  plain = jaxrnn.conv_lstm(2, (3,))
  carry = jaxrnn.ConvLSTMCarry(h=jnp.ones((4, 2)), c=jnp.ones((4, 2)))
  x = jnp.ones((4, 1))
  np.testing.assert_array_equal(cell(params, carry, x)[1], plain(params._replace(w_c=None), carry, x)[1])
  assert not np.allclose(cell(params._replace(w_c=params.w_c + 1), carry, x)[1], cell(params, carry, x)[1])


def test_any_leading_axes_and_input_transform():
  cell = jaxrnn.conv_lstm(2, (3, 3))
  params = registry.random_params(cell, (4, 4, 1), jax.random.key(1))
  carry = cell.initial_carry(params, (2, 3, 4, 4))  # (*B, *S)
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
  with pytest.raises(ValueError, match=r"x must have shape \[\*B, 5, 4, 2\]"):  # channels: 2
    cell(params, cell.initial_carry(params, (1, 5, 4)), jnp.zeros((1, 5, 4, 3)))
  with pytest.raises(ValueError, match="carry.h must have shape"):
    cell(params, cell.initial_carry(params, (2, 4, 4)), jnp.zeros((1, 4, 4, 2)))
  with pytest.raises(ValueError, match="carry.h must have shape"):  # the carry covers another map size
    cell(params, cell.initial_carry(params, (1, 4, 4)), jnp.zeros((1, 5, 4, 2)))
  with pytest.raises(ValueError, match=r"batch_shape of conv_lstm over 2-D maps must be \(\*B, \*S\).*got \(2,\)"):
    cell.initial_carry(params, (2,))


def test_runs_on_any_map_size_with_one_params():
  """No param depends on the map size: a cell initialised on 5x4 maps runs on 3x6 ones (as Flax's ConvLSTMCell),
  with the carry built for the input's map by unroll (carry=None), equal to the float64 NumPy reference."""
  from tests.cases import conv  # pylint: disable=g-import-not-at-top

  cell = jaxrnn.conv_lstm(2, (3, 3))
  params = registry.randomize(cell.init(jax.random.key(0), (5, 4, 1)), jax.random.key(1))
  assert cell.map_ndim == 2 and [a.shape for a in jax.tree.leaves(params)] == [(3, 3, 1, 8), (3, 3, 2, 8), (8,)]
  run = jax.jit(lambda p, x: jaxrnn.unroll(cell, p, None, x))
  for spatial in ((5, 4), (3, 6)):
    xs = jax.random.normal(jax.random.key(2), (2, 3) + spatial + (1,))  # [B, T, *S, C]
    final, hs = run(params, xs)
    assert hs.shape == (2, 3) + spatial + (2,) and final.c.shape == (2,) + spatial + (2,)
    p64 = registry.to_numpy(params)
    for b in range(2):
      zeros = np.zeros(spatial + (2,))
      ref_carry, ref_hs = registry.reference_unroll(conv.ref_conv_lstm, p64, jaxrnn.ConvLSTMCarry(h=zeros, c=zeros),
                                                    np.asarray(xs[b], np.float64))
      np.testing.assert_allclose(hs[b], ref_hs, rtol=1e-5, atol=1e-5)
      np.testing.assert_allclose(final.c[b], ref_carry.c, rtol=1e-5, atol=1e-5)


def test_jit_traces_once_per_map_size():
  cell = jaxrnn.conv_lstm(2, (3,))
  params = cell.init(jax.random.key(0), (6, 1))
  traces = []

  @jax.jit
  def run(p, x):
    traces.append(x.shape)
    return jaxrnn.unroll(cell, p, None, x)[1]

  for width in (6, 6, 4, 4, 6):
    run(params, jnp.full((1, 2, width, 1), float(width)))
  assert traces == [(1, 2, 6, 1), (1, 2, 4, 1)]


def test_flax_layers_run_any_map_size_like_flax():
  """jaxrnn.flax.linen.RNN and jaxrnn.flax.nnx.RNN of conv_lstm, initialised on 4x4 maps, run on 3x5 maps, equal to
  Flax's ConvLSTMCell (also initialised on 4x4, same weights) stepped over the sequence."""
  nn = pytest.importorskip("flax.linen")
  jl = pytest.importorskip("jaxrnn.flax.linen")
  H, C, T = 2, 1, 3
  flax_cell = nn.ConvLSTMCell(features=H, kernel_size=(3, 3))
  x4 = jnp.ones((1, 4, 4, C))
  variables = flax_cell.init(jax.random.key(0), flax_cell.initialize_carry(jax.random.key(0), x4.shape), x4)
  variables = {"params": registry.randomize(variables["params"], jax.random.key(1))}
  layer = jl.RNN(jaxrnn.conv_lstm(H, (3, 3)))
  layer.init(jax.random.key(0), jnp.ones((1, T, 4, 4, C)))  # initialised on 4x4 maps
  ours = {"params": {"cell": flax_to_jaxrnn(variables)._asdict()}}
  del ours["params"]["cell"]["w_c"]
  xs = jax.random.normal(jax.random.key(2), (2, T, 3, 5, C))
  hs = layer.apply(ours, xs)
  carry = flax_cell.initialize_carry(jax.random.key(0), xs[:, 0].shape)
  for t in range(T):
    carry, out = flax_cell.apply(variables, carry, xs[:, t])
    np.testing.assert_allclose(hs[:, t], out, rtol=1e-5, atol=1e-5)
  jnnx = pytest.importorskip("jaxrnn.flax.nnx")
  nnx = pytest.importorskip("flax.nnx")
  nnx_layer = jnnx.RNN(jaxrnn.conv_lstm(H, (3, 3)), (4, 4, C), rngs=nnx.Rngs(0))  # initialised on 4x4 maps
  module = nnx_layer.cell
  module.params = nnx.data(jax.tree.map(nnx.Param, flax_to_jaxrnn(variables)))
  np.testing.assert_allclose(nnx_layer(xs), hs, rtol=1e-6, atol=1e-6)  # ... runs on 3x5 maps too


def test_peephole_variant_keeps_its_map_size():
  cell = jaxrnn.conv_lstm(2, (3,), peephole=True)
  params = cell.init(jax.random.key(0), (4, 1))
  assert jaxrnn.unroll(cell, params, None, jnp.ones((1, 2, 4, 1)))[1].shape == (1, 2, 4, 2)
  message = (r"maps of shape \(5,\), but conv_lstm\(peephole=True\) has per-position peephole weights w_c for "
             r"maps \(4,\)")
  with pytest.raises(ValueError, match=message):
    jaxrnn.unroll(cell, params, None, jnp.ones((1, 2, 5, 1)))
  with pytest.raises(ValueError, match=message):
    cell(params, cell.initial_carry(params, (1, 4)), jnp.ones((1, 5, 1)))


def test_combinators_forward_the_map_axes():
  """stack (with dropout), bidirectional and reset_on of conv cells build their carries for the input's map."""
  conv = jaxrnn.conv_lstm(2, (3,))
  for cell in (jaxrnn.stack(conv, jaxrnn.conv_lstm(3, (3,)), dropout=0.5), jaxrnn.bidirectional(conv, conv)):
    assert cell.map_ndim == 1
    params = cell.init(jax.random.key(0), (4, 1))
    _, hs = jaxrnn.unroll(cell, params, None, jnp.ones((2, 3, 6, 1)), key=jax.random.key(1))
    assert hs.shape[:3] == (2, 3, 6)
  reset = jaxrnn.reset_on(conv)
  params = conv.init(jax.random.key(0), (4, 1))
  xs = jax.random.normal(jax.random.key(2), (1, 4, 5, 1))
  _, hs = jaxrnn.unroll(reset, params, None, (xs, jnp.array([[False, False, True, False]])))
  np.testing.assert_allclose(hs[:, 2:], jaxrnn.unroll(conv, params, None, xs[:, 2:])[1], rtol=1e-6, atol=1e-6)
  with pytest.raises(ValueError, match=r"cells\[1\] \(conv_lstm_2d\) has map_ndim=2"):
    jaxrnn.stack(conv, jaxrnn.conv_lstm(2, (3, 3)))
  with pytest.raises(ValueError, match="learned_initial_carry needs a cell whose carry does not cover"):
    jaxrnn.learned_initial_carry(conv)
