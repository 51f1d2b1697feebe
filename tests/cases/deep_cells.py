"""Cells that couple layers (depth-gated LSTM, Grid LSTM) and their float64 NumPy references from the papers."""

import numpy as np

import jaxrnn
from tests.registry import CellCase


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def ref_depth_gated_lstm(p, carry, x):
  """Yao et al. 2015: peephole LSTM layers, c^L = d ⊙ c^{L-1} + f ⊙ c^L_{t-1} + i ⊙ g (one example)."""
  new = []
  inp, c_below = x, None
  for layer, (lp, lc) in enumerate(zip(p, carry)):
    H = lc.h.shape[-1]
    b = lp.b if lp.b is not None else np.zeros(4 * H)
    pre = lambda k: inp @ lp.w_i[:, k * H:(k + 1) * H] + lc.h @ lp.w_h[:, k * H:(k + 1) * H] + b[k * H:(k + 1) * H]
    peep = lp.w_p if lp.w_p is not None else np.zeros((3, H))
    i = sigmoid(pre(0) + peep[0] * lc.c)
    f = sigmoid(pre(1) + peep[1] * lc.c)
    g = np.tanh(pre(2))
    c = f * lc.c + i * g
    if layer > 0:
      b_d = lp.b_d if lp.b_d is not None else np.zeros(H)
      d = sigmoid(inp @ lp.w_xd + lp.w_cd * lc.c + lp.w_ld * c_below + b_d)
      c = c + d * c_below
    o = sigmoid(pre(3) + peep[2] * c)
    h = o * np.tanh(c)
    new.append(jaxrnn.LSTMCarry(h=h, c=c))
    inp, c_below = h, c
  return tuple(new), new[-1].h


def _grid_transform(tp, hs, m):
  """Kalchbrenner et al. 2015: m' = g^f m + g^u g^c, h' = tanh(g^o m')."""
  H = m.shape[-1]
  z = hs @ tp.w + (tp.b if tp.b is not None else 0.0)
  gu, gf, gc, go = sigmoid(z[:H]), sigmoid(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), sigmoid(z[3 * H:])
  m_new = gf * m + gu * gc
  return np.tanh(go * m_new), m_new


def ref_grid_lstm(tied, depth_priority=True):
  def step(p, carry, x):
    h_d = x @ p.w_x + (p.b_x if p.b_x is not None else 0.0)
    m_d = np.zeros_like(h_d)
    new = []
    for layer, lc in enumerate(carry):
      blk = p.blocks[0 if tied else layer]
      h_t, m_t = _grid_transform(blk.time, np.concatenate([lc.h, h_d]), lc.m)
      h_in = h_t if depth_priority else lc.h
      h_d, m_d = _grid_transform(blk.depth, np.concatenate([h_in, h_d]), m_d)
      new.append(jaxrnn.GridLSTMCarry(h=h_t, m=m_t))
    return tuple(new), h_d
  return step


CASES = [
    CellCase("depth_gated_lstm", lambda **kw: jaxrnn.depth_gated_lstm((4, 4), **kw),
             reference=ref_depth_gated_lstm),
    CellCase("depth_gated_lstm_no_peepholes_no_bias",
             lambda **kw: jaxrnn.depth_gated_lstm((3, 3), peepholes=False, use_bias=False, **kw),
             reference=ref_depth_gated_lstm, variant_of="depth_gated_lstm"),
    CellCase("grid_lstm", lambda **kw: jaxrnn.grid_lstm(4, 2, **kw), reference=ref_grid_lstm(tied=False)),
    # Tied weights, no depth priority and no biases in one case (the reference follows every flag).
    CellCase("grid_lstm_tied_no_priority_no_bias",
             lambda **kw: jaxrnn.grid_lstm(3, 2, tied=True, depth_priority=False, use_bias=False, **kw),
             reference=ref_grid_lstm(tied=True, depth_priority=False), variant_of="grid_lstm"),
]
