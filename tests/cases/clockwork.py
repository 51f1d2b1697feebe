"""The Clockwork RNN, whose carry holds an integer step counter, with a float64 NumPy reference."""

import numpy as np

import jaxrnn
from tests.registry import CellCase


def ref_clockwork(periods, activation=np.tanh):
  def step(p, carry, x):
    H, g = carry.h.shape[-1], len(periods)
    k = H // g
    t = int(carry.t)
    h = carry.h.copy()
    for i in range(g):  # target module i
      if t % periods[i] != 0:
        continue  # holds its state
      dst = slice(i * k, (i + 1) * k)
      z = x @ p.w_i[:, dst] + (p.b[dst] if p.b is not None else 0.0)
      for j in range(i, g):  # reads only itself and slower modules j >= i
        src = slice(j * k, (j + 1) * k)
        z = z + carry.h[src] @ p.w_h[src, dst]
      h[dst] = activation(z)
    return jaxrnn.ClockworkCarry(h=h, t=np.asarray(t + 1, carry.t.dtype)), h
  return step


CASES = [
    CellCase("clockwork_rnn", lambda **kw: jaxrnn.clockwork_rnn(6, num_modules=3, **kw),
             reference=ref_clockwork((1, 2, 4))),
    CellCase("clockwork_rnn_periods_1_3", lambda **kw: jaxrnn.clockwork_rnn(4, periods=(1, 3), use_bias=False, **kw),
             reference=ref_clockwork((1, 3)), variant_of="clockwork_rnn"),
]
