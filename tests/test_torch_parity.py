"""Parity with PyTorch nn.RNN / nn.LSTM / nn.GRU (single layer, weights mapped by hand, float32).

The hand mapping here is an independent check of the library's own (``jaxrnn.interop.from_torch``, whose full
parity tests are in ``tests/test_interop_torch.py``): both must give the same params.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn.interop import from_torch

torch = pytest.importorskip("torch")

B, T, F, H = 3, 7, 5, 6


def t2n(t):
  return t.detach().numpy()


def same_as_from_torch(m, params):
  (library,) = from_torch(m)[1]                                  # a stack of one layer
  assert type(library) is type(params)
  for a, b in zip(library, params):
    if a is None or b is None:
      assert a is None and b is None
    else:
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def run_jax(cell, params, carry, xs, lengths=None):
  return jaxrnn.unroll(cell, params, carry, jnp.asarray(xs), seq_lengths=lengths)


@pytest.fixture(autouse=True)
def _seed():
  torch.manual_seed(0)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_rnn(nonlinearity, bias):
  m = torch.nn.RNN(F, H, nonlinearity=nonlinearity, bias=bias, batch_first=True)
  xs = torch.randn(B, T, F)
  h0 = torch.randn(1, B, H)
  out, hn = m(xs, h0)
  b = t2n(m.bias_ih_l0 + m.bias_hh_l0) if bias else None
  params = jaxrnn.SimpleRNNParams(w_i=t2n(m.weight_ih_l0).T, w_h=t2n(m.weight_hh_l0).T, b=b)
  same_as_from_torch(m, params)
  cell = jaxrnn.simple_rnn(H, activation=nonlinearity, use_bias=bias)
  final, hs = run_jax(cell, params, jaxrnn.SimpleRNNCarry(h=jnp.asarray(t2n(h0[0]))), t2n(xs))
  assert np.abs(np.asarray(hs) - t2n(out)).max() <= 1e-5
  assert np.abs(np.asarray(final.h) - t2n(hn[0])).max() <= 1e-5


@pytest.mark.parametrize("bias", [True, False])
def test_lstm(bias):
  m = torch.nn.LSTM(F, H, bias=bias, batch_first=True)
  xs = torch.randn(B, T, F)
  h0, c0 = torch.randn(1, B, H), torch.randn(1, B, H)
  out, (hn, cn) = m(xs, (h0, c0))
  b = t2n(m.bias_ih_l0 + m.bias_hh_l0) if bias else None
  params = jaxrnn.LSTMParams(w_i=t2n(m.weight_ih_l0).T, w_h=t2n(m.weight_hh_l0).T, b=b)
  same_as_from_torch(m, params)
  cell = jaxrnn.lstm(H, use_bias=bias)
  carry = jaxrnn.LSTMCarry(h=jnp.asarray(t2n(h0[0])), c=jnp.asarray(t2n(c0[0])))
  final, hs = run_jax(cell, params, carry, t2n(xs))
  assert np.abs(np.asarray(hs) - t2n(out)).max() <= 1e-5
  assert np.abs(np.asarray(final.h) - t2n(hn[0])).max() <= 1e-5
  assert np.abs(np.asarray(final.c) - t2n(cn[0])).max() <= 1e-5


@pytest.mark.parametrize("bias", [True, False])
def test_gru(bias):
  m = torch.nn.GRU(F, H, bias=bias, batch_first=True)
  xs = torch.randn(B, T, F)
  h0 = torch.randn(1, B, H)
  out, hn = m(xs, h0)
  if bias:
    b_ih, b_hh = t2n(m.bias_ih_l0), t2n(m.bias_hh_l0)
    b = b_ih + np.concatenate([b_hh[:2 * H], np.zeros(H, np.float32)])
    b_hn = b_hh[2 * H:]
  else:
    b = b_hn = None
  params = jaxrnn.GRUParams(w_i=t2n(m.weight_ih_l0).T, w_h=t2n(m.weight_hh_l0).T, b=b, b_hn=b_hn)
  same_as_from_torch(m, params)
  cell = jaxrnn.gru(H, use_bias=bias)
  final, hs = run_jax(cell, params, jaxrnn.GRUCarry(h=jnp.asarray(t2n(h0[0]))), t2n(xs))
  assert np.abs(np.asarray(hs) - t2n(out)).max() <= 1e-5
  assert np.abs(np.asarray(final.h) - t2n(hn[0])).max() <= 1e-5


def test_lstm_packed_variable_lengths():
  m = torch.nn.LSTM(F, H, batch_first=True)
  xs = torch.randn(B, T, F)
  lengths = [7, 4, 1]
  packed = torch.nn.utils.rnn.pack_padded_sequence(xs, torch.tensor(lengths), batch_first=True)
  out, (hn, cn) = m(packed)
  out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
  params = jaxrnn.LSTMParams(w_i=t2n(m.weight_ih_l0).T, w_h=t2n(m.weight_hh_l0).T,
                             b=t2n(m.bias_ih_l0 + m.bias_hh_l0))
  cell = jaxrnn.lstm(H)
  final, hs = run_jax(cell, params, cell.initial_carry(params, (B,)), t2n(xs), jnp.array(lengths))
  assert np.abs(np.asarray(hs) - t2n(out)).max() <= 1e-5
  assert np.abs(np.asarray(final.h) - t2n(hn[0])).max() <= 1e-5
  assert np.abs(np.asarray(final.c) - t2n(cn[0])).max() <= 1e-5
