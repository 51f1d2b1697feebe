"""GRU relatives: the minimal gated unit (both forms) and the IndRNN, with float64 NumPy references."""

import numpy as np

import jaxrnn
from tests.registry import CellCase


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def ref_mgu(variant, reset_gate=True):
  def step(p, carry, x):
    h_prev = carry.h
    H = h_prev.shape[-1]
    b = p.b if p.b is not None else np.zeros(2 * H)
    Wif, Win = p.w_i[:, :H], p.w_i[:, H:]
    Whf, Whn = p.w_h[:, :H], p.w_h[:, H:]
    f = sigmoid(x @ Wif + h_prev @ Whf + b[:H])
    if variant == "zhou":
      r = f if reset_gate else 1.0
      n = np.tanh(x @ Win + (r * h_prev) @ Whn + b[H:])
      h = (1.0 - f) * h_prev + f * n
    else:
      rec = h_prev @ Whn
      if reset_gate:
        rec = f * (rec + (p.b_hn if p.b_hn is not None else 0.0))
      n = np.tanh(x @ Win + b[H:] + rec)
      h = (1.0 - f) * n + f * h_prev
    return jaxrnn.MGUCarry(h=h), h
  return step


def ref_indrnn(activation, min_abs=None, max_abs=None):
  def step(p, carry, x):
    u = p.u.copy()
    for n in range(u.size):  # bound each unit's weight
      mag = abs(u[n])
      if max_abs is not None:
        mag = min(mag, max_abs)
      if min_abs is not None:
        mag = max(mag, min_abs)
      u[n] = -mag if u[n] < 0 else mag
    z = x @ p.w_i + u * carry.h
    if p.b is not None:
      z = z + p.b
    h = activation(z)
    return jaxrnn.IndRNNCarry(h=h), h
  return step


relu = lambda z: np.maximum(z, 0.0)

CASES = [
    CellCase("mgu", lambda **kw: jaxrnn.mgu(5, **kw), reference=ref_mgu("zhou")),
    CellCase("mgu_no_reset", lambda **kw: jaxrnn.mgu(4, reset_gate=False, **kw),
             reference=ref_mgu("zhou", reset_gate=False), variant_of="mgu"),
    CellCase("mgu_flax", lambda **kw: jaxrnn.mgu(5, variant="flax", **kw), reference=ref_mgu("flax"), variant_of="mgu"),
    CellCase("mgu_flax_no_reset_no_bias",
             lambda **kw: jaxrnn.mgu(4, variant="flax", reset_gate=False, use_bias=False, **kw),
             reference=ref_mgu("flax", reset_gate=False), variant_of="mgu"),
    CellCase("indrnn_tanh", lambda **kw: jaxrnn.indrnn(5, activation="tanh", **kw), reference=ref_indrnn(np.tanh)),
    # randomize() draws u ~ 0.5 N(0, 1): the bounds clip some of them, from above and from below.
    CellCase("indrnn_relu_bounded",
             lambda **kw: jaxrnn.indrnn(5, recurrent_max_abs=0.6, recurrent_min_abs=0.2, **kw),
             reference=ref_indrnn(relu, min_abs=0.2, max_abs=0.6), check_grads=False, variant_of="indrnn_tanh"),
]
