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

pytestmark = pytest.mark.usefixtures("quick_compiles")  # many tiny programs, each run once or twice

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
  layer = jnnx.RNN(module, reverse=reverse, keep_order=True, time_major=time_major)
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
  with pytest.raises(ValueError, match="carry_init needs rngs"):
    module.initialize_carry((F,), carry_init=nnx.initializers.ones)
  ones = module.initialize_carry((B, F), nnx.Rngs(0), carry_init=nnx.initializers.ones)
  assert all(bool(jnp.all(a == 1)) for a in jax.tree.leaves(ones))


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
  with pytest.raises(ValueError, match="needs input_size and rngs"):
    jnnx.RNN(jaxrnn.lstm(H))
  with pytest.raises(TypeError, match="CellModule"):
    jnnx.RNN("lstm")
  with pytest.raises(ValueError, match="CellModule subclass"):
    jnnx.RNN(jnnx.GRU(H, F, rngs=nnx.Rngs(0)), broadcast_rngs="dropout")
  with pytest.raises(ValueError, match="needs rngs"):
    jnnx.RNN(jnnx.GRU(H, F, rngs=nnx.Rngs(0)), deterministic=False)(_xs())
  with pytest.raises(ValueError, match="time axis"):
    jnnx.RNN(jnnx.GRU(H, F, rngs=nnx.Rngs(0)))(jnp.ones((F,), jnp.float32))


# Flax's own recurrent test patterns with jaxrnn's layer swapped in for nnx.RNN.


@pytest.mark.parametrize("keep_order", [False, True])
def test_reverse_and_keep_order_match_flax_rnn(keep_order):
  module = jnnx.CellModule(jaxrnn.lstm(H), F, rngs=nnx.Rngs(0))
  xs = _xs()
  ours = jnnx.RNN(module, reverse=True, keep_order=keep_order, return_carry=True)
  theirs = nnx.RNN(module, reverse=True, keep_order=keep_order, return_carry=True)
  _assert_close(ours(xs), theirs(xs))
  (carry, hs), (fcarry, fhs) = ours(xs, seq_lengths=LENGTHS), theirs(xs, seq_lengths=LENGTHS)
  mask = (jnp.arange(T)[None, :] < LENGTHS[:, None])[..., None]
  _assert_close((carry, hs), (fcarry, jnp.where(mask, fhs, 0.0)))


class _RecurrentDropoutCell(jnnx.CellModule):
  """Flax's NNX recurrent-dropout test pattern: a CellModule subclass whose __call__ adds dropout on h."""

  def __init__(self, cell, input_size, rate, *, rngs):
    super().__init__(cell, input_size, rngs=rngs)
    self.recurrent_dropout = nnx.Dropout(rate, rng_collection="recurrent_dropout", rngs=rngs)

  def __call__(self, carry, x):
    carry, h = super().__call__(carry, x)
    return carry, self.recurrent_dropout(h)


def test_cell_module_subclass_call_runs():
  make = lambda: _RecurrentDropoutCell(jaxrnn.lstm(H), F, 0.5, rngs=nnx.Rngs(0, recurrent_dropout=1))
  ours = jnnx.RNN(make(), broadcast_rngs="recurrent_dropout")
  theirs = nnx.RNN(make(), broadcast_rngs="recurrent_dropout")
  xs = _xs()
  assert int(ours.cell.recurrent_dropout.rngs.count[...]) == 0
  hs = ours(xs)
  assert int(ours.cell.recurrent_dropout.rngs.count[...]) == 1  # one key per call, broadcast over the steps
  _assert_close(hs, theirs(xs))
  zeros = hs == 0
  assert 0.2 < float(jnp.mean(zeros)) < 0.8 and bool(jnp.all(zeros == zeros[:, :1]))  # the dropout ran
  plain = jnnx.RNN(jnnx.CellModule(ours.cell.cell, params=ours.cell.cell_params()))(xs)
  _assert_close(hs, jnp.where(zeros, 0.0, 2.0 * plain))
  ours.eval()  # the subclass's own nnx.Dropout follows eval()
  plain_layer = jnnx.RNN(jnnx.CellModule(ours.cell.cell, params=ours.cell.cell_params()))
  _assert_close(ours(xs, seq_lengths=LENGTHS), plain_layer(xs, seq_lengths=LENGTHS))
  with pytest.raises(ValueError, match="remat=2.*_RecurrentDropoutCell overrides CellModule"):
    jnnx.RNN(ours.cell, remat=2)(xs)


def test_dropout_follows_nnx_conventions():
  rate = 0.5
  layer = jnnx.RNN(jaxrnn.dropout(jaxrnn.gru(H), output_rate=rate), F, rngs=nnx.Rngs(0, dropout=1))  # a bare Cell
  xs = _xs()
  a, b = layer(xs), layer(xs)
  assert 0.3 < float(jnp.mean(a == 0)) < 0.7 and not np.allclose(a, b)  # a new key per call
  layer.eval()
  clean = layer(xs)
  _assert_close(jnp.where(a == 0, 0.0, clean / (1 - rate)), a)
  layer.train()
  _assert_close(layer(xs, rngs=nnx.Rngs(dropout=5)), layer(xs, rngs=nnx.Rngs(dropout=5)))
  _assert_close(layer(xs, deterministic=True), clean)
  stacked = jnnx.RNN(jaxrnn.stack(jaxrnn.lstm(H), jaxrnn.lstm(H), dropout=0.5), F, rngs=nnx.Rngs(0))
  assert not np.allclose(stacked(xs), stacked(xs, deterministic=True))


def test_run_options_bidirectional_and_carry_init():
  fwd = jnnx.CellModule(jaxrnn.lstm(H), F, rngs=nnx.Rngs(0))
  bwd = jnnx.CellModule(jaxrnn.gru(H), F, rngs=nnx.Rngs(1))
  xs = _xs()
  want = jnnx.RNN(fwd, return_carry=True)(xs, seq_lengths=LENGTHS)
  for kw in ({"remat": 2, "unroll": 2, "hoist": True}, {"options": jaxrnn.RunOptions(remat=3), "mode": "step"}):
    _assert_close(jnnx.RNN(fwd, return_carry=True, **kw)(xs, seq_lengths=LENGTHS), want, 1e-5)
  wrapped = nnx.Bidirectional(jnnx.RNN(fwd), jnnx.RNN(bwd), return_carry=True)  # Flax's layer around ours
  _assert_close(wrapped(xs), nnx.Bidirectional(nnx.RNN(fwd), nnx.RNN(bwd), return_carry=True)(xs))
  _assert_close(wrapped(xs, seq_lengths=LENGTHS),
                jnnx.Bidirectional(jnnx.RNN(fwd), jnnx.RNN(bwd), return_carry=True)(xs, seq_lengths=LENGTHS))
  ones = jnnx.CellModule(fwd.cell, params=fwd.cell_params(), carry_init=nnx.initializers.ones)
  p = fwd.cell_params()
  _assert_close(jnnx.RNN(ones)(xs, rngs=nnx.Rngs(0)),
                jaxrnn.unroll(fwd.cell, p, jax.tree.map(jnp.ones_like, fwd.cell.initial_carry(p, (B,))), xs)[1])
