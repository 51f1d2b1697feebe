"""Exact conversion between jaxrnn params and Flax's own cells: parity over sequences and round trips."""

import functools

import flax.linen as nn
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn.flax import convert
from jaxrnn.flax import linen as jl
from jaxrnn.flax import nnx as jnnx

B, T, F, H = 2, 5, 3, 4
LENGTHS = np.array([5, 2])
TOL = 1e-5

LINEN = {
    "LSTMCell": (nn.LSTMCell, jaxrnn.lstm, convert.lstm_from_linen, convert.lstm_to_linen, "lstm"),
    "OptimizedLSTMCell": (nn.OptimizedLSTMCell, jaxrnn.lstm, convert.lstm_from_linen, convert.lstm_to_linen,
                          "lstm"),
    "GRUCell": (nn.GRUCell, jaxrnn.gru, convert.gru_from_linen, convert.gru_to_linen, "gru"),
    "SimpleCell": (nn.SimpleCell, jaxrnn.simple_rnn, convert.simple_from_linen, convert.simple_to_linen, "simple"),
    "MGUCell": (nn.MGUCell, functools.partial(jaxrnn.mgu, variant="flax"), convert.mgu_from_linen,
                convert.mgu_to_linen, "mgu"),
    "MGUCell_no_reset": (functools.partial(nn.MGUCell, reset_gate=False),
                         functools.partial(jaxrnn.mgu, variant="flax", reset_gate=False), convert.mgu_from_linen,
                         convert.mgu_to_linen, "mgu"),
}
NNX = {
    "LSTMCell": (nnx.LSTMCell, jaxrnn.lstm, "lstm"),
    "OptimizedLSTMCell": (nnx.OptimizedLSTMCell, jaxrnn.lstm, "lstm"),
    "GRUCell": (nnx.GRUCell, jaxrnn.gru, "gru"),
    "SimpleCell": (nnx.SimpleCell, jaxrnn.simple_rnn, "simple"),
}


def _xs(seed=0):
  return jax.random.normal(jax.random.key(seed), (B, T, F), jnp.float32)


def _randomize(tree, seed):
  """Random values everywhere (Flax initialises biases to zero, which would hide bias mix-ups)."""
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(treedef, [0.5 * jax.random.normal(k, l.shape, l.dtype) for k, l in zip(keys, leaves)])


def _max_diff(a, b):
  return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _valid(hs, lengths):
  if lengths is None:
    return hs
  mask = jnp.arange(T)[None, :] < jnp.asarray(lengths)[:, None]
  return jnp.where(mask[..., None], hs, 0.0)


@pytest.mark.parametrize("name", list(LINEN))
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "padded"])
def test_linen_parity(name, lengths):
  flax_cls, factory, from_flax, _, kind = LINEN[name]
  xs = _xs()
  flax_rnn = nn.RNN(flax_cls(H), return_carry=True)
  variables = flax_rnn.init(jax.random.key(1), xs)
  variables = {"params": _randomize(variables["params"], 2)}
  flax_carry, flax_hs = flax_rnn.apply(variables, xs, seq_lengths=lengths)
  flax_hs = _valid(flax_hs, lengths)

  cell = factory(H)
  params = from_flax(variables["params"]["cell"])
  expected_carry = convert.carry_from_flax(flax_carry, kind)
  # The functional engine.
  carry, hs = jaxrnn.unroll(cell, params, cell.initial_carry(params, (B,)), xs, seq_lengths=lengths)
  assert _max_diff(hs, flax_hs) <= TOL and _max_diff(carry, expected_carry) <= TOL
  # jaxrnn's linen layer.
  jvars = {"params": {"cell": jl.to_flax_params(params)}}
  carry, hs = jl.RNN(cell, return_carry=True).apply(jvars, xs, seq_lengths=lengths)
  assert _max_diff(hs, flax_hs) <= TOL and _max_diff(carry, expected_carry) <= TOL
  # Flax's own nn.RNN driving the jaxrnn adapter.
  carry, hs = nn.RNN(jl.CellModule(cell), return_carry=True).apply(jvars, xs, seq_lengths=lengths)
  assert _max_diff(_valid(hs, lengths), flax_hs) <= TOL and _max_diff(carry, expected_carry) <= TOL


@pytest.mark.parametrize("name", list(LINEN))
def test_linen_round_trip(name):
  flax_cls, factory, from_flax, to_flax, _ = LINEN[name]
  x = jnp.ones((B, F), jnp.float32)
  flax_cell = flax_cls(H)
  flax_params = _randomize(flax_cell.init(jax.random.key(0), flax_cell.initialize_carry(jax.random.key(1), x.shape),
                                          x)["params"], 3)
  back = to_flax(from_flax(flax_params))
  assert jax.tree.structure(back) == jax.tree.structure(dict(flax_params))
  jax.tree.map(np.testing.assert_array_equal, back, dict(flax_params))
  params = factory(H).init(jax.random.key(4), F)
  jax.tree.map(np.testing.assert_array_equal, from_flax(to_flax(params)), params)
  # Converted jaxrnn params are valid params of the Flax cell.
  flax_cell.apply({"params": to_flax(params)}, flax_cell.initialize_carry(jax.random.key(1), x.shape), x)


def _nnx_cell(cls, seed):
  cell = cls(F, H, rngs=nnx.Rngs(seed))
  state = nnx.state(cell, nnx.Param)
  nnx.replace_by_pure_dict(state, _randomize(nnx.to_pure_dict(state), seed + 10))
  nnx.update(cell, state)
  return cell


@pytest.mark.parametrize("name", list(NNX))
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "padded"])
def test_nnx_parity(name, lengths):
  flax_cls, factory, kind = NNX[name]
  xs = _xs()
  flax_cell = _nnx_cell(flax_cls, 0)
  flax_carry, flax_hs = nnx.RNN(flax_cell, return_carry=True)(xs, seq_lengths=lengths)
  flax_hs = _valid(flax_hs, lengths)

  cell = factory(H)
  params = convert.from_nnx(flax_cell)
  expected_carry = convert.carry_from_flax(flax_carry, kind)
  carry, hs = jaxrnn.unroll(cell, params, cell.initial_carry(params, (B,)), xs, seq_lengths=lengths)
  assert _max_diff(hs, flax_hs) <= TOL and _max_diff(carry, expected_carry) <= TOL
  module = jnnx.CellModule(cell, params=params)
  carry, hs = jnnx.RNN(module, return_carry=True)(xs, seq_lengths=lengths)
  assert _max_diff(hs, flax_hs) <= TOL and _max_diff(carry, expected_carry) <= TOL
  carry, hs = nnx.RNN(module, return_carry=True)(xs, seq_lengths=lengths)
  assert _max_diff(_valid(hs, lengths), flax_hs) <= TOL and _max_diff(carry, expected_carry) <= TOL


@pytest.mark.parametrize("name", list(NNX))
def test_nnx_round_trip(name):
  flax_cls, factory, _ = NNX[name]
  flax_cell = _nnx_cell(flax_cls, 1)
  before = nnx.to_pure_dict(nnx.state(flax_cell, nnx.Param))
  params = convert.from_nnx(flax_cell)
  other = _nnx_cell(flax_cls, 2)
  convert.to_nnx(params, other)
  jax.tree.map(np.testing.assert_array_equal, nnx.to_pure_dict(nnx.state(other, nnx.Param)), before)
  fresh = factory(H).init(jax.random.key(5), F)
  if name == "GRUCell":
    fresh = fresh._replace(b_hn=jnp.zeros_like(fresh.b_hn))
  convert.to_nnx(fresh, other)
  jax.tree.map(np.testing.assert_array_equal, convert.from_nnx(other), fresh)


def test_nnx_gru_rejects_recurrent_candidate_bias():
  params = jaxrnn.gru(H).init(jax.random.key(0), F)
  params = params._replace(b_hn=jnp.ones_like(params.b_hn))
  with pytest.raises(ValueError, match="b_hn"):
    convert.gru_to_nnx(params)


def test_use_bias_false_converts_with_zero_bias():
  params = jaxrnn.lstm(H, use_bias=False).init(jax.random.key(0), F)
  flax_params = convert.lstm_to_linen(params)
  assert all(float(jnp.abs(flax_params[f"h{g}"]["bias"]).max()) == 0 for g in "ifgo")


def test_mgu_to_linen_reset_gate_option():
  params = jaxrnn.mgu(H, variant="flax", use_bias=False).init(jax.random.key(0), F)
  assert params.b is None and params.b_hn is None
  assert "bias" not in convert.mgu_to_linen(params)["hn"]  # Inferred: no b_hn -> MGUCell(reset_gate=False).
  flax_params = convert.mgu_to_linen(params, reset_gate=True)
  assert all(float(jnp.abs(flax_params[k]["bias"]).max()) == 0 for k in ("if", "in", "hn"))
  x = jnp.ones((B, F), jnp.float32)
  _, h = nn.MGUCell(H).apply({"params": flax_params}, jnp.zeros((B, H)), x)
  _, h_ref = jaxrnn.mgu(H, variant="flax", use_bias=False)(params, jaxrnn.MGUCarry(h=jnp.zeros((B, H))), x)
  assert _max_diff(h, h_ref) <= TOL
  with pytest.raises(ValueError, match="reset_gate=False"):
    convert.mgu_to_linen(jaxrnn.mgu(H, variant="flax").init(jax.random.key(0), F), reset_gate=False)
  with pytest.raises(ValueError, match="lacks"):
    convert.mgu_from_linen(convert.gru_to_linen(jaxrnn.gru(H).init(jax.random.key(0), F)))


def test_errors():
  with pytest.raises(ValueError, match="lacks"):
    convert.lstm_from_linen({"i": {}, "h": {}})
  with pytest.raises(TypeError, match="NNX"):
    convert.from_nnx(nnx.Linear(2, 2, rngs=nnx.Rngs(0)))
  with pytest.raises(ValueError, match="do not fit"):
    convert.to_nnx(jaxrnn.lstm(H + 1).init(jax.random.key(0), F), nnx.LSTMCell(F, H, rngs=nnx.Rngs(0)))
  with pytest.raises(ValueError, match="kind"):
    convert.carry_from_flax(jnp.zeros(3), "lru")


def test_carry_helpers_round_trip():
  c, h = jnp.ones((B, H)), jnp.zeros((B, H))
  carry = convert.carry_from_flax((c, h), "lstm")
  assert carry.h is h and carry.c is c
  assert convert.carry_to_flax(carry) == (c, h)
  assert convert.carry_to_flax(convert.carry_from_flax(h, "gru")) is h
  assert convert.carry_to_flax(convert.carry_from_flax(h, "simple")) is h
  assert convert.carry_to_flax(convert.carry_from_flax(h, "mgu")) is h
