"""The convolutional LSTM over 1-D and 2-D maps, with a float64 NumPy reference (explicit loops over the kernel)."""

import itertools

import numpy as np

import jaxrnn
from tests.registry import CellCase


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def conv_same(x, w):
  """SAME, stride-1 convolution (cross-correlation, as lax) of ``x: [*S, C]`` with ``w: [*K, C, O]``."""
  spatial, K = x.shape[:-1], w.shape[:-2]
  out = np.zeros(spatial + (w.shape[-1],))
  lo = [(k - 1) // 2 for k in K]  # lax SAME: (k - 1) // 2 zeros before, k // 2 after
  for pos in itertools.product(*[range(s) for s in spatial]):
    for off in itertools.product(*[range(k) for k in K]):
      src = tuple(p + o - l for p, o, l in zip(pos, off, lo))
      if all(0 <= s < n for s, n in zip(src, spatial)):
        out[pos] += x[src] @ w[off]
  return out


def ref_conv_lstm(p, carry, x):
  H = carry.h.shape[-1]
  z = conv_same(x, p.w_i) + conv_same(carry.h, p.w_h)
  if p.b is not None:
    z = z + p.b
  i, f, g, o = (z[..., k * H:(k + 1) * H] for k in range(4))
  if p.w_c is not None:
    i, f = i + p.w_c[0] * carry.c, f + p.w_c[1] * carry.c
  c = sigmoid(f) * carry.c + sigmoid(i) * np.tanh(g)
  if p.w_c is not None:
    o = o + p.w_c[2] * c
  h = sigmoid(o) * np.tanh(c)
  return jaxrnn.ConvLSTMCarry(h=h, c=c), h


CASES = [
    CellCase("conv_lstm_1d", lambda **kw: jaxrnn.conv_lstm(2, (3,), **kw), input_shape=(4, 2),
             reference=ref_conv_lstm, variant_of="conv_lstm_2d"),
    CellCase("conv_lstm_2d", lambda **kw: jaxrnn.conv_lstm(2, (3, 3), **kw), input_shape=(4, 4, 2),
             reference=ref_conv_lstm),
    CellCase("conv_lstm_2d_peephole_even_kernel", lambda **kw: jaxrnn.conv_lstm(2, (2, 3), peephole=True, **kw),
             input_shape=(4, 4, 1), reference=ref_conv_lstm, variant_of="conv_lstm_2d"),
]
