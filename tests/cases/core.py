"""The core cells (Elman RNN, IRNN, LSTM, GRU in both forms) and their float64 NumPy references."""

import numpy as np

import jaxrnn
from tests.registry import CellCase


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def ref_simple_rnn(activation):
  def step(p, carry, x):
    z = x @ p.w_i + carry.h @ p.w_h
    if p.b is not None:
      z = z + p.b
    h = activation(z)
    return jaxrnn.SimpleRNNCarry(h=h), h
  return step


def ref_lstm(p, carry, x):
  H = carry.h.shape[-1]
  W_i, W_h = p.w_i, p.w_h
  b = p.b if p.b is not None else np.zeros(4 * H)
  gate = lambda k: x @ W_i[:, k * H:(k + 1) * H] + carry.h @ W_h[:, k * H:(k + 1) * H] + b[k * H:(k + 1) * H]
  i, f, g, o = sigmoid(gate(0)), sigmoid(gate(1)), np.tanh(gate(2)), sigmoid(gate(3))
  c = f * carry.c + i * g
  h = o * np.tanh(c)
  return jaxrnn.LSTMCarry(h=h, c=c), h


def ref_gru(reset_after):
  def step(p, carry, x):
    h_prev = carry.h
    H = h_prev.shape[-1]
    b = p.b if p.b is not None else np.zeros(3 * H)
    b_hn = p.b_hn if p.b_hn is not None else np.zeros(H)
    blk = lambda W, k: W[:, k * H:(k + 1) * H]
    r = sigmoid(x @ blk(p.w_i, 0) + b[:H] + h_prev @ blk(p.w_h, 0))
    z = sigmoid(x @ blk(p.w_i, 1) + b[H:2 * H] + h_prev @ blk(p.w_h, 1))
    if reset_after:
      n = np.tanh(x @ blk(p.w_i, 2) + b[2 * H:] + r * (h_prev @ blk(p.w_h, 2) + b_hn))
    else:
      n = np.tanh(x @ blk(p.w_i, 2) + b[2 * H:] + (r * h_prev) @ blk(p.w_h, 2) + b_hn)
    h = (1.0 - z) * n + z * h_prev
    return jaxrnn.GRUCarry(h=h), h
  return step


CASES = [
    CellCase("simple_rnn_tanh", lambda **kw: jaxrnn.simple_rnn(4, **kw), reference=ref_simple_rnn(np.tanh)),
    CellCase("simple_rnn_relu", lambda **kw: jaxrnn.simple_rnn(4, activation="relu", **kw),
             reference=ref_simple_rnn(lambda z: np.maximum(z, 0.0)), variant_of="simple_rnn_tanh"),
    CellCase("simple_rnn_no_bias", lambda **kw: jaxrnn.simple_rnn(4, use_bias=False, **kw),
             reference=ref_simple_rnn(np.tanh), variant_of="simple_rnn_tanh"),
    CellCase("irnn", lambda **kw: jaxrnn.irnn(4, **kw), reference=ref_simple_rnn(lambda z: np.maximum(z, 0.0)),
             variant_of="simple_rnn_tanh"),
    CellCase("lstm", lambda **kw: jaxrnn.lstm(5, **kw), reference=ref_lstm),
    CellCase("lstm_no_bias", lambda **kw: jaxrnn.lstm(5, use_bias=False, **kw), reference=ref_lstm, variant_of="lstm"),
    CellCase("gru", lambda **kw: jaxrnn.gru(5, **kw), reference=ref_gru(reset_after=True)),
    CellCase("gru_reset_before", lambda **kw: jaxrnn.gru(5, reset_after=False, **kw),
             reference=ref_gru(reset_after=False), variant_of="gru"),
    CellCase("gru_no_bias", lambda **kw: jaxrnn.gru(5, use_bias=False, **kw), reference=ref_gru(reset_after=True),
             variant_of="gru"),
]
