"""jaxrnn.interop.equinox: exact weights to and from eqx.nn.LSTMCell/GRUCell; the modules under filter_jit/grad/vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn

eqx = pytest.importorskip("equinox")
from jaxrnn.interop import equinox as jeqx  # noqa: E402  pylint: disable=g-import-not-at-top

pytestmark = pytest.mark.usefixtures("quick_compiles")  # a few tiny programs

B, T, F, H = 2, 5, 3, 4
LENGTHS = jnp.array([5, 2])


def _eqx_scan(module, xs, carry):
  """What an Equinox user writes: a scan of the cell over one sequence, vmapped over the batch."""
  def one(x_seq, c):
    def body(c, x):
      c = module(x, c)
      return c, (c[0] if isinstance(c, tuple) else c)
    return jax.lax.scan(body, c, x_seq)
  return jax.vmap(one)(xs, carry)


@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_no_bias"])
def test_parity_with_equinox_cells_and_round_trip(kind):
  key = jax.random.key(0)
  use_bias = kind != "gru_no_bias"
  module = (eqx.nn.LSTMCell if kind == "lstm" else eqx.nn.GRUCell)(F, H, use_bias=use_bias, key=key)
  if use_bias:  # nonzero biases everywhere (Equinox's GRU initialises bias_n randomly too)
    module = eqx.tree_at(lambda m: m.bias, module, jax.random.normal(jax.random.key(1), module.bias.shape))
  cell, params = jeqx.from_equinox(module)
  xs = jax.random.normal(jax.random.key(2), (B, T, F), module.weight_ih.dtype)
  c0 = cell.initial_carry(params, (B,))
  eqx_carry = (c0.h, c0.c) if kind == "lstm" else c0.h
  final_e, hs_e = _eqx_scan(module, xs, eqx_carry)
  final, hs = jaxrnn.unroll(cell, params, c0, xs)
  np.testing.assert_allclose(hs, hs_e, atol=1e-6)
  np.testing.assert_allclose(final.h, final_e[0] if kind == "lstm" else final_e, atol=1e-6)
  back = jeqx.to_equinox(cell, params)
  for name in ("weight_ih", "weight_hh", "bias", "bias_n"):
    if hasattr(module, name):
      a, b = getattr(back, name), getattr(module, name)
      assert (a is None) == (b is None) and (a is None or bool(jnp.array_equal(a, b))), name


def test_modules_under_filter_transforms():
  cell = jaxrnn.dropout(jaxrnn.gru(H), output_rate=0.5)
  layer = jeqx.RNN(cell, F, key=jax.random.key(0), unroll=2)
  xs = jax.random.normal(jax.random.key(1), (B, T, F))
  carry, hs = eqx.filter_jit(lambda m, x, l: m(x, seq_lengths=l))(layer, xs, LENGTHS)
  want = jaxrnn.unroll(cell, layer.params, None, xs, seq_lengths=LENGTHS)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), (carry, hs), want)
  one = eqx.filter_vmap(lambda m, x, l: m(x, seq_lengths=l)[1], in_axes=(None, 0, 0))(layer, xs, LENGTHS)
  np.testing.assert_allclose(one, hs, atol=1e-6)
  grads = eqx.filter_grad(lambda m: jnp.sum(m(xs, seq_lengths=LENGTHS)[1] ** 2))(layer)
  want_g = jax.grad(lambda p: jnp.sum(jaxrnn.unroll(cell, p, None, xs, seq_lengths=LENGTHS)[1] ** 2))(layer.params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), grads.params, want_g)
  dropped = layer(xs, key=jax.random.key(3))[1]                    # a key: the dropout runs
  assert 0.3 < float(jnp.mean(dropped == 0)) < 0.7
  step = jeqx.CellModule(jaxrnn.gru(H), params=layer.params)
  c, h = step(step.initial_carry((B,)), jnp.ones((B, F)))
  assert h.shape == (B, H) and isinstance(c, jaxrnn.GRUCarry)


def test_errors():
  with pytest.raises(TypeError, match="eqx.nn.LSTMCell or eqx.nn.GRUCell"):
    jeqx.from_equinox(eqx.nn.Linear(2, 3, key=jax.random.key(0)))
  p = jaxrnn.gru(H, reset_after=False).init(jax.random.key(0), F)
  with pytest.raises(ValueError, match="reset_after=False"):
    jeqx.to_equinox(jaxrnn.gru(H, reset_after=False), p)
  with pytest.raises(ValueError, match="maps jaxrnn.lstm and jaxrnn.gru"):
    jeqx.to_equinox(jaxrnn.simple_rnn(H), jaxrnn.simple_rnn(H).init(jax.random.key(0), F))
  with pytest.raises(ValueError, match="input_size and key"):
    jeqx.RNN(jaxrnn.gru(H))
  with pytest.raises(TypeError, match="jaxrnn.Cell"):
    jeqx.CellModule("gru", params=p)
