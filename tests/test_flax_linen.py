"""jaxrnn cells as Flax linen modules: inside Flax's RNN layers, jaxrnn's own layer, jit/vmap/grad, training."""

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
from jax.test_util import check_grads
import numpy as np
import optax
import pytest

import jaxrnn
from jaxrnn.flax import linen as jl

pytestmark = pytest.mark.usefixtures("quick_compiles")  # many tiny programs, each run once or twice

B, T, F, H = 2, 5, 3, 4
LENGTHS = jnp.array([5, 2])
CELLS = {
    "lstm": lambda **kw: jaxrnn.lstm(H, **kw),
    "gru": lambda **kw: jaxrnn.gru(H, **kw),
    "gru_reset_before": lambda **kw: jaxrnn.gru(H, reset_after=False, **kw),
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
  xs = _xs()
  layer = nn.RNN(jl.CellModule(cell), return_carry=True)
  variables = layer.init(jax.random.key(1), xs)
  params = jl.from_flax_params(cell, variables["params"]["cell"], F)
  assert set(variables["params"]["cell"]) == {k for k, v in params._asdict().items() if v is not None}
  carry, hs = layer.apply(variables, xs)
  want_carry, want_hs = jaxrnn.unroll(cell, params, cell.initial_carry(params, (B,)), xs)
  _assert_close(hs, want_hs)
  _assert_close(carry, want_carry)
  # jaxrnn's layer shares the variables of Flax's layer.
  carry2, hs2 = jl.RNN(cell, return_carry=True).apply(variables, xs)
  _assert_close(hs2, want_hs)
  _assert_close(carry2, want_carry)


def test_init_matches_functional_init():
  cell = jaxrnn.lstm(H)
  variables = jl.RNN(cell).init({"params": jax.random.key(7)}, _xs())
  # CellModule draws exactly one key from the "params" stream and calls cell.init with it.
  assert jax.tree.structure(jl.from_flax_params(cell, variables["params"]["cell"], F)) == \
      jax.tree.structure(cell.init(jax.random.key(0), F))


@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_layer_options_equal_unroll(time_major, reverse):
  cell = jaxrnn.gru(H)
  xs = _xs()
  if time_major:
    xs = jnp.swapaxes(xs, 0, 1)
  layer = jl.RNN(cell, reverse=reverse, keep_order=True, time_major=time_major)
  variables = layer.init(jax.random.key(1), xs)
  params = jl.from_flax_params(cell, variables["params"]["cell"], F)
  carry, hs = layer.apply(variables, xs, seq_lengths=LENGTHS, return_carry=True)
  want = jaxrnn.unroll(cell, params, cell.initial_carry(params, (B,)), xs, seq_lengths=LENGTHS, reverse=reverse,
                       time_major=time_major)
  _assert_close((carry, hs), want)
  assert layer.apply(variables, xs).shape == hs.shape
  c0 = jaxrnn.GRUCarry(h=jnp.ones((B, H), jnp.float32))
  _assert_close(layer.apply(variables, xs, initial_carry=c0, return_carry=True),
                jaxrnn.unroll(cell, params, c0, xs, reverse=reverse, time_major=time_major))


def test_bidirectional_matches_flax_bidirectional():
  fwd, bwd = jaxrnn.lstm(H), jaxrnn.gru(H)
  xs = _xs()
  flax_bi = nn.Bidirectional(nn.RNN(jl.CellModule(fwd)), nn.RNN(jl.CellModule(bwd)), return_carry=True)
  variables = flax_bi.init(jax.random.key(1), xs)
  ours = jl.Bidirectional(jl.RNN(fwd), jl.RNN(bwd), return_carry=True)
  (cf, cb), hs = ours.apply(variables, xs)  # Same variable names as Flax's Bidirectional.
  (fcf, fcb), fhs = flax_bi.apply(variables, xs)
  assert hs.shape == (B, T, 2 * H)
  _assert_close(hs, fhs)
  _assert_close((cf, cb), (fcf, fcb))
  (cf, cb), hs = ours.apply(variables, xs, seq_lengths=LENGTHS)
  (fcf, fcb), fhs = flax_bi.apply(variables, xs, seq_lengths=LENGTHS)
  mask = (jnp.arange(T)[None, :] < LENGTHS[:, None])[..., None]
  _assert_close(hs, jnp.where(mask, fhs, 0.0))
  _assert_close((cf, cb), (fcf, fcb))


def test_initialize_carry_and_feature_axes():
  module = jl.CellModule(jaxrnn.lstm(H))
  assert module.num_feature_axes == 1
  carry = module.initialize_carry(jax.random.key(0), (B, 7, F))
  assert isinstance(carry, jaxrnn.LSTMCarry) and carry.h.shape == (B, 7, H) and carry.c.dtype == jnp.float32
  assert module.initialize_carry(jax.random.key(0), (F,)).h.shape == (H,)


def test_jit_vmap_grad():
  cell = jaxrnn.lstm(H, param_dtype=jnp.float64)
  xs = _xs(jnp.float64)
  layer = jl.RNN(cell)
  variables = layer.init(jax.random.key(1), xs)
  out = layer.apply(variables, xs, seq_lengths=LENGTHS)
  _assert_close(jax.jit(lambda v, x, l: layer.apply(v, x, seq_lengths=l))(variables, xs, LENGTHS), out, 1e-12)
  one = jax.vmap(lambda x, l: layer.apply(variables, x, seq_lengths=l))(xs, LENGTHS)
  _assert_close(one, out, 1e-12)
  step_module = jl.CellModule(cell)
  x0 = xs[:, 0]
  carry0 = step_module.initialize_carry(jax.random.key(0), x0.shape)
  svars = step_module.init(jax.random.key(2), carry0, x0)
  batched = step_module.apply(svars, carry0, x0)
  looped = jax.vmap(lambda c, x: step_module.apply(svars, c, x))(carry0, x0)
  _assert_close(batched, looped, 1e-12)

  def loss(v, x):
    return jnp.sum(layer.apply(v, x, seq_lengths=LENGTHS) ** 2)

  check_grads(loss, (variables, xs), order=1, modes=["rev"], atol=1e-5, rtol=1e-5)


def test_training_with_optax_decreases_loss():
  cell = jaxrnn.gru(H)
  xs = _xs()
  ys = jnp.sin(jnp.cumsum(xs[..., :1], axis=1))  # [B, T, 1]

  class Model(nn.Module):

    @nn.compact
    def __call__(self, x):
      return nn.Dense(1)(jl.RNN(cell)(x))

  model = Model()
  variables = model.init(jax.random.key(1), xs)
  tx = optax.adam(3e-2)
  opt_state = tx.init(variables)

  @jax.jit
  def train_step(v, s):
    loss, g = jax.value_and_grad(lambda v: jnp.mean((model.apply(v, xs) - ys) ** 2))(v)
    updates, s = tx.update(g, s)
    return optax.apply_updates(v, updates), s, loss

  losses = []
  for _ in range(30):
    variables, opt_state, loss = train_step(variables, opt_state)
    losses.append(float(loss))
  assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("name", ["lstm", "lstm_no_bias"])
def test_serialization_round_trip(name):
  cell = CELLS[name]()
  layer = jl.RNN(cell)
  variables = layer.init(jax.random.key(1), _xs())
  data = flax.serialization.to_bytes(variables)
  template = layer.init(jax.random.key(2), _xs())
  restored = flax.serialization.from_bytes(template, data)
  jax.tree.map(np.testing.assert_array_equal, restored, variables)
  assert jax.tree.structure(restored) == jax.tree.structure(variables)
  state = flax.serialization.to_state_dict(variables)
  jax.tree.map(np.testing.assert_array_equal, flax.serialization.from_state_dict(template, state), variables)


def test_errors():
  with pytest.raises(TypeError, match="jaxrnn.Cell"):
    jl.RNN("lstm").init(jax.random.key(0), _xs())
  with pytest.raises(ValueError, match="CellModule subclass"):
    jl.RNN(jaxrnn.gru(H), split_rngs={"params": False, "dropout": True}).init(jax.random.key(0), _xs())
  with pytest.raises(ValueError, match="'dropout' rng stream"):
    jl.RNN(jaxrnn.gru(H), deterministic=False).init(jax.random.key(0), _xs())
  with pytest.raises(TypeError, match="deterministic must be True, False or None"):
    jl.RNN(jaxrnn.gru(H), deterministic=0).init(jax.random.key(0), _xs())
  with pytest.raises(TypeError, match="jaxrnn.Cell"):
    jl.CellModule(object())
  with pytest.raises(ValueError, match="time axis"):
    jl.RNN(jaxrnn.gru(H)).init(jax.random.key(0), jnp.ones((F,), jnp.float32))


def test_convenience_constructors():
  xs = _xs()
  for module in (jl.LSTM(H), jl.GRU(H, reset_after=False), jl.SimpleRNN(H, activation="relu")):
    variables = nn.RNN(module).init(jax.random.key(0), xs)
    assert nn.RNN(module).apply(variables, xs).shape == (B, T, H)


def test_core_does_not_import_flax():
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  code = "import sys, jaxrnn; assert 'flax' not in sys.modules, 'jaxrnn imported flax'"
  subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[1]))


# Flax's own recurrent test patterns with jaxrnn's layer swapped in for nn.RNN.


@pytest.mark.parametrize("keep_order", [False, True])
def test_reverse_and_keep_order_match_flax_rnn(keep_order):
  cell = jaxrnn.lstm(H)
  xs = _xs()
  theirs = nn.RNN(jl.CellModule(cell), reverse=True, keep_order=keep_order, return_carry=True)
  ours = jl.RNN(cell, reverse=True, keep_order=keep_order, return_carry=True)
  variables = theirs.init(jax.random.key(1), xs)
  _assert_close(ours.apply(variables, xs), theirs.apply(variables, xs))
  # With lengths, Flax's padded outputs are whatever the cell computed on padding; ours are zeros.
  (carry, hs), (fcarry, fhs) = (m.apply(variables, xs, seq_lengths=LENGTHS) for m in (ours, theirs))
  mask = (jnp.arange(T)[None, :] < LENGTHS[:, None])[..., None]
  _assert_close(hs, jnp.where(mask, fhs, 0.0))
  _assert_close(carry, fcarry)
  # Flax's manual check: the outputs are the cell stepped over the reversed sequence.
  p = jl.from_flax_params(cell, variables["params"]["cell"], F)
  c, steps = cell.initial_carry(p, (B,)), []
  for t in range(T - 1, -1, -1):
    c, h = cell(p, c, xs[:, t])
    steps.append(h)
  want = jnp.stack(steps[::-1] if keep_order else steps, axis=1)
  _assert_close(ours.apply(variables, xs)[1], want, 1e-5)


class _RecurrentDropoutCell(jl.CellModule):
  """Flax's recurrent-dropout test pattern: a CellModule subclass whose __call__ adds dropout on h."""

  rate: float = 0.5

  @nn.compact
  def __call__(self, carry, x):
    carry, h = super().__call__(carry, x)
    return carry, nn.Dropout(self.rate, deterministic=False, rng_collection="recurrent_dropout")(h)


class _ScaledCell(jl.CellModule):
  """A subclass that changes the output deterministically (a projection would do the same)."""

  def __call__(self, carry, x):
    carry, h = super().__call__(carry, x)
    return carry, 2.0 * h


def test_cell_module_subclass_call_runs():
  cell = jaxrnn.lstm(H)
  xs = _xs()
  split = {"params": False, "recurrent_dropout": True}
  ours = jl.RNN(_RecurrentDropoutCell(cell), split_rngs=split)
  theirs = nn.RNN(_RecurrentDropoutCell(cell), split_rngs=split)
  variables = ours.init({"params": jax.random.key(1), "recurrent_dropout": jax.random.key(2)}, xs)
  rngs = {"recurrent_dropout": jax.random.key(3)}
  hs = ours.apply(variables, xs, rngs=rngs)
  _assert_close(hs, theirs.apply(variables, xs, rngs=rngs))
  assert 0.3 < float(jnp.mean(hs == 0)) < 0.7  # the dropout ran
  plain = jl.RNN(cell).apply(variables, xs)
  _assert_close(jnp.where(hs == 0, 0.0, hs / 2.0), jnp.where(hs == 0, 0.0, plain))
  scaled = jl.RNN(_ScaledCell(cell), return_carry=True)
  carry, hs = scaled.apply(variables, xs, seq_lengths=LENGTHS)
  want_carry, want = jl.RNN(cell, return_carry=True).apply(variables, xs, seq_lengths=LENGTHS)
  _assert_close((carry, hs), (want_carry, 2.0 * want))  # padded outputs stay zeros
  with pytest.raises(ValueError, match="remat=True.*_ScaledCell overrides CellModule"):
    jl.RNN(_ScaledCell(cell), remat=True).apply(variables, xs)


def test_dropout_follows_flax_conventions():
  rate = 0.5
  cell = jaxrnn.dropout(jaxrnn.gru(H), output_rate=rate)
  xs = _xs()
  layer = jl.RNN(cell)
  variables = layer.init(jax.random.key(1), xs)
  clean = layer.apply(variables, xs)
  drop = jax.jit(lambda k: layer.apply(variables, xs, rngs={"dropout": k}))  # one program for every key
  a, b = drop(jax.random.key(2)), drop(jax.random.key(3))
  assert 0.3 < float(jnp.mean(a == 0)) < 0.7
  _assert_close(jnp.where(a == 0, 0.0, clean / (1 - rate)), a)  # inverted dropout of the clean outputs
  assert not np.allclose(a, b)
  _assert_close(drop(jax.random.key(2)), a)
  _assert_close(layer.apply(variables, xs, rngs={"dropout": jax.random.key(2)}, deterministic=True), clean)
  # The case: a stack's inter-layer dropout takes effect.
  stacked = jl.RNN(jaxrnn.stack(jaxrnn.lstm(H), jaxrnn.lstm(H), dropout=0.5))
  sv = stacked.init(jax.random.key(1), xs)
  assert not np.allclose(stacked.apply(sv, xs, rngs={"dropout": jax.random.key(2)}), stacked.apply(sv, xs))
  # Flax's own nn.RNN draws it too, from the same stream.
  assert 0.3 < float(jnp.mean(nn.RNN(jl.CellModule(cell)).apply(
      variables, xs, rngs={"dropout": jax.random.key(2)}) == 0)) < 0.7


def test_run_options_reach_the_layer():
  cell = jaxrnn.lstm(H)
  xs = _xs()
  variables = jl.RNN(cell).init(jax.random.key(1), xs)
  want = jl.RNN(cell, return_carry=True).apply(variables, xs, seq_lengths=LENGTHS)
  for kw in ({"remat": 2, "unroll": 2, "hoist": True}, {"options": jaxrnn.RunOptions(remat=3), "mode": "step"}):
    _assert_close(jl.RNN(cell, return_carry=True, **kw).apply(variables, xs, seq_lengths=LENGTHS), want, 1e-5)
  with pytest.raises(ValueError, match="does not honour"):
    jl.RNN(cell, remat=True, mode="sequence").apply(variables, xs)


def test_layers_inside_flax_bidirectional_and_carry_init():
  fwd, bwd = jaxrnn.lstm(H), jaxrnn.gru(H)
  xs = _xs()
  theirs = nn.Bidirectional(nn.RNN(jl.CellModule(fwd)), nn.RNN(jl.CellModule(bwd)), return_carry=True)
  variables = theirs.init(jax.random.key(1), xs)
  wrapped = nn.Bidirectional(jl.RNN(fwd), jl.RNN(bwd), return_carry=True)  # Flax's layer around ours
  _assert_close(wrapped.apply(variables, xs), theirs.apply(variables, xs))
  _assert_close(wrapped.apply(variables, xs), jl.Bidirectional(jl.RNN(fwd), jl.RNN(bwd),
                                                               return_carry=True).apply(variables, xs))
  # carry_init, as Flax's cells have it.
  module = jl.CellModule(fwd, carry_init=nn.initializers.ones)
  assert all(bool(jnp.all(a == 1)) for a in jax.tree.leaves(module.initialize_carry(jax.random.key(0), (B, F))))
  p = jl.from_flax_params(fwd, variables["params"]["forward_rnn"]["cell"], F)
  ones = jax.tree.map(jnp.ones_like, fwd.initial_carry(p, (B,)))
  _assert_close(jl.RNN(module).apply({"params": {"cell": variables["params"]["forward_rnn"]["cell"]}}, xs),
                jaxrnn.unroll(fwd, p, ones, xs)[1])
