"""jaxrnn cells as Flax NNX modules: inside Flax's NNX RNN layers, jaxrnn's own layer, jit/vmap/grad, training."""

import flax.serialization
from flax import nnx
import jax
import jax.numpy as jnp
from jax.test_util import check_grads
import numpy as np
import optax
import pytest

import jaxrnn
from jaxrnn.flax import nnx as jnnx

B, T, F, H = 2, 5, 3, 4
LENGTHS = jnp.array([5, 2])
CELLS = {
    "lstm": lambda **kw: jaxrnn.lstm(H, **kw),
    "gru": lambda **kw: jaxrnn.gru(H, **kw),
    "simple_rnn": lambda **kw: jaxrnn.simple_rnn(H, **kw),
    "lstm_no_bias": lambda **kw: jaxrnn.lstm(H, use_bias=False, **kw),
}


def _xs(dtype=jnp.float32):
  return jax.random.normal(jax.random.key(0), (B, T, F), dtype)


def _assert_close(a, b, tol=1e-6):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, atol=tol, rtol=0), a, b)


@pytest.mark.parametrize("name", list(CELLS))
def test_cell_module_in_flax_rnn_equals_unroll(name):
  cell = CELLS[name]()
  module = jnnx.CellModule(cell, F, rngs=nnx.Rngs(0))
  params = module.cell_params()
  assert isinstance(params, type(cell.init(jax.random.key(0), F)))
  leaves = jax.tree.leaves(module.params, is_leaf=lambda v: isinstance(v, nnx.Variable))
  assert leaves and all(isinstance(v, nnx.Param) for v in leaves)
  xs = _xs()
  want = jaxrnn.unroll(cell, params, cell.initial_carry(params, (B,)), xs, seq_lengths=LENGTHS)
  carry, hs = nnx.RNN(module, return_carry=True)(xs, seq_lengths=LENGTHS)
  mask = (jnp.arange(T)[None, :] < LENGTHS[:, None])[..., None]
  _assert_close((carry, jnp.where(mask, hs, 0.0)), want)
  _assert_close(jnnx.RNN(module, return_carry=True)(xs, seq_lengths=LENGTHS), want)


@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_layer_options_equal_unroll(time_major, reverse):
  cell = jaxrnn.gru(H)
  module = jnnx.CellModule(cell, F, rngs=nnx.Rngs(1))
  p = module.cell_params()
  xs = _xs()
  if time_major:
    xs = jnp.swapaxes(xs, 0, 1)
  layer = jnnx.RNN(module, reverse=reverse, time_major=time_major)
  want = jaxrnn.unroll(cell, p, cell.initial_carry(p, (B,)), xs, seq_lengths=LENGTHS, reverse=reverse,
                       time_major=time_major)
  _assert_close(layer(xs, seq_lengths=LENGTHS, return_carry=True), want)
  c0 = jaxrnn.GRUCarry(h=jnp.ones((B, H), jnp.float32))
  _assert_close(layer(xs, initial_carry=c0, return_carry=True),
                jaxrnn.unroll(cell, p, c0, xs, reverse=reverse, time_major=time_major))


def test_bidirectional_matches_flax_bidirectional():
  fwd = jnnx.CellModule(jaxrnn.lstm(H), F, rngs=nnx.Rngs(0))
  bwd = jnnx.CellModule(jaxrnn.gru(H), F, rngs=nnx.Rngs(1))
  xs = _xs()
  ours = jnnx.Bidirectional(jnnx.RNN(fwd), jnnx.RNN(bwd), return_carry=True)
  theirs = nnx.Bidirectional(nnx.RNN(fwd), nnx.RNN(bwd), return_carry=True)
  (cf, cb), hs = ours(xs)
  (fcf, fcb), fhs = theirs(xs)
  assert hs.shape == (B, T, 2 * H)
  _assert_close(hs, fhs)
  _assert_close((cf, cb), (fcf, fcb))
  (cf, cb), hs = ours(xs, seq_lengths=LENGTHS)
  (fcf, fcb), fhs = theirs(xs, seq_lengths=LENGTHS)
  mask = (jnp.arange(T)[None, :] < LENGTHS[:, None])[..., None]
  _assert_close(hs, jnp.where(mask, fhs, 0.0))
  _assert_close((cf, cb), (fcf, fcb))


def test_initialize_carry_and_feature_axes():
  module = jnnx.LSTM(H, F, rngs=nnx.Rngs(0))
  assert module.num_feature_axes == 1
  carry = module.initialize_carry((B, 7, F))
  assert isinstance(carry, jaxrnn.LSTMCarry) and carry.h.shape == (B, 7, H) and carry.c.dtype == jnp.float32
  with pytest.raises(ValueError, match="carry_init"):
    module.initialize_carry((F,), carry_init=jnp.zeros)


def test_jit_vmap_grad():
  cell = jaxrnn.lstm(H, param_dtype=jnp.float64)
  layer = jnnx.RNN(jnnx.CellModule(cell, F, rngs=nnx.Rngs(0)))
  xs = _xs(jnp.float64)
  out = layer(xs, seq_lengths=LENGTHS)
  _assert_close(nnx.jit(lambda m, x, l: m(x, seq_lengths=l))(layer, xs, LENGTHS), out, 1e-12)
  _assert_close(jax.vmap(lambda x, l: layer(x, seq_lengths=l))(xs, LENGTHS), out, 1e-12)
  module = layer.cell
  carry0 = module.initialize_carry(xs[:, 0].shape)
  _assert_close(module(carry0, xs[:, 0]), jax.vmap(module)(carry0, xs[:, 0]), 1e-12)

  graphdef, params = nnx.split(layer, nnx.Param)

  def loss(params, x):
    return jnp.sum(nnx.merge(graphdef, params)(x, seq_lengths=LENGTHS) ** 2)

  check_grads(loss, (params, xs), order=1, modes=["rev"], atol=1e-5, rtol=1e-5)
  grads = nnx.grad(lambda m: jnp.sum(m(xs) ** 2))(layer)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


class _Model(nnx.Module):

  def __init__(self, rngs):
    self.rnn = jnnx.RNN(jnnx.GRU(H, F, rngs=rngs))
    self.head = nnx.Linear(H, 1, rngs=rngs)

  def __call__(self, x):
    return self.head(self.rnn(x))


def test_training_with_optax_decreases_loss():
  xs = _xs()
  ys = jnp.sin(jnp.cumsum(xs[..., :1], axis=1))
  model = _Model(nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, optax.adam(3e-2), wrt=nnx.Param)

  @nnx.jit
  def train_step(model, optimizer):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(xs) - ys) ** 2))(model)
    optimizer.update(model, grads)
    return loss

  losses = [float(train_step(model, optimizer)) for _ in range(30)]
  assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("name", ["lstm", "lstm_no_bias"])
def test_serialization_round_trip(name):
  module = jnnx.CellModule(CELLS[name](), F, rngs=nnx.Rngs(0))
  state = nnx.to_pure_dict(nnx.state(module, nnx.Param))
  data = flax.serialization.to_bytes(state)
  other = jnnx.CellModule(CELLS[name](), F, rngs=nnx.Rngs(1))
  other_state = nnx.state(other, nnx.Param)
  restored = flax.serialization.from_bytes(nnx.to_pure_dict(other_state), data)
  nnx.replace_by_pure_dict(other_state, restored)
  nnx.update(other, other_state)
  jax.tree.map(np.testing.assert_array_equal, other.cell_params(), module.cell_params())


def test_errors():
  with pytest.raises(TypeError, match="jaxrnn.Cell"):
    jnnx.CellModule("lstm", F, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="input_size and rngs"):
    jnnx.CellModule(jaxrnn.lstm(H))
  with pytest.raises(ValueError, match="not both"):
    jnnx.CellModule(jaxrnn.lstm(H), F, params=jaxrnn.lstm(H).init(jax.random.key(0), F))
  with pytest.raises(TypeError, match="CellModule"):
    jnnx.RNN(jaxrnn.lstm(H))
  with pytest.raises(ValueError, match="time axis"):
    jnnx.RNN(jnnx.GRU(H, F, rngs=nnx.Rngs(0)))(jnp.ones((F,), jnp.float32))
