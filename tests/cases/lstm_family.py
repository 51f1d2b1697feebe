"""The LSTM family (peepholes, Greff et al. 2015 variants, coupled gates, layer norm, LSTMP): float64 references.

Every reference writes the paper's equations again in NumPy, one example at a time, without library code.
"""

import numpy as np

import jaxrnn
from tests.registry import CellCase


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def ref_greff(*, no_i=False, no_f=False, no_o=False, niaf=False, noaf=False, peep="ifo", coupling=None,
              fgr=False):
  """Greff et al. (2015), eq. (1)-(6), with the variant's change. Blocks in ``[i, f, g, o]`` order, minus the
  gates the variant does not compute."""
  computed = [k for k, absent in (("i", no_i or coupling == "colah"), ("f", no_f or coupling == "cifg"),
                                  ("o", no_o)) if not absent]
  blocks = [k for k in ("i", "f", "g", "o") if k == "g" or k in computed]

  def step(p, carry, x):
    H = carry.h.shape[-1]
    b = p.b if p.b is not None else np.zeros(len(blocks) * H)
    pre = {}
    for n, k in enumerate(blocks):
      sl = slice(n * H, (n + 1) * H)
      pre[k] = x @ p.w_i[:, sl] + carry.h @ p.w_h[:, sl] + b[sl]
    if fgr:
      for n, k in enumerate(computed):  # every previous gate feeds every gate
        pre[k] = pre[k] + carry.gates @ p.w_g[:, n * H:(n + 1) * H]
    c_prev = carry.c
    i = f = o = None
    if "i" in computed:
      i = sigmoid(pre["i"] + (p.p_i * c_prev if "i" in peep else 0.0))
    if "f" in computed:
      f = sigmoid(pre["f"] + (p.p_f * c_prev if "f" in peep else 0.0))
    if coupling == "cifg":
      f = 1.0 - i
    if coupling == "colah":
      i = 1.0 - f
    i_ = np.ones(H) if i is None else i
    f_ = np.ones(H) if f is None else f
    g = pre["g"] if niaf else np.tanh(pre["g"])
    c = f_ * c_prev + i_ * g
    if "o" in computed:
      o = sigmoid(pre["o"] + (p.p_o * c if "o" in peep else 0.0))
    o_ = np.ones(H) if o is None else o
    h = o_ * (c if noaf else np.tanh(c))
    if fgr:
      gates = np.concatenate([{"i": i, "f": f, "o": o}[k] for k in computed])
      return jaxrnn.FGRCarry(h=h, c=c, gates=gates), h
    return jaxrnn.LSTMCarry(h=h, c=c), h

  return step


def _ln(z, gain, bias, eps=1e-5):
  mu = z.mean()
  var = ((z - mu) ** 2).mean()
  return gain * (z - mu) / np.sqrt(var + eps) + (0.0 if bias is None else bias)


def ref_layer_norm_lstm(per_gate):
  """Ba, Kiros & Hinton (2016), eq. (20)-(22)."""

  def ln(z, gain):
    if not per_gate:
      return _ln(z, gain, None)
    H = z.shape[-1] // 4
    return np.concatenate([_ln(z[k * H:(k + 1) * H], gain[k * H:(k + 1) * H], None) for k in range(4)])

  def step(p, carry, x):
    H = carry.h.shape[-1]
    z = ln(x @ p.w_i, p.gain_i) + ln(carry.h @ p.w_h, p.gain_h) + p.b
    i, f, g, o = (z[k * H:(k + 1) * H] for k in range(4))
    c = sigmoid(f) * carry.c + sigmoid(i) * np.tanh(g)
    h = sigmoid(o) * np.tanh(_ln(c, p.gain_c, p.b_c))
    return jaxrnn.LSTMCarry(h=h, c=c), h

  return step


def ref_lstmp(p, carry, x):
  """Sak et al. (2014): the LSTM whose output r_t = W_rm m_t is fed back."""
  H = carry.c.shape[-1]
  b = p.b if p.b is not None else np.zeros(4 * H)
  z = x @ p.w_i + carry.h @ p.w_h + b
  i, f, g, o = sigmoid(z[:H]), sigmoid(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), sigmoid(z[3 * H:])
  c = f * carry.c + i * g
  m = o * np.tanh(c)
  h = m @ p.w_r
  return jaxrnn.LSTMPCarry(h=h, c=c), h


_GREFF_REFS = {
    "vanilla": ref_greff(),
    "NIG": ref_greff(no_i=True, peep="fo"),
    "NFG": ref_greff(no_f=True, peep="io"),
    "NOG": ref_greff(no_o=True, peep="if"),
    "NIAF": ref_greff(niaf=True),
    "NOAF": ref_greff(noaf=True),
    "NP": ref_greff(peep=""),
    "CIFG": ref_greff(coupling="cifg", peep="io"),
    "FGR": ref_greff(fgr=True),
}

# Kept small (the generic suite runs every check on every case); further configurations (peepholes on one gate,
# LayerNorm over all 4H, LSTMP without bias) are checked against the same references in tests/test_lstm_family.py.
CASES = [
    CellCase(f"lstm_{name}", (lambda name: lambda **kw: jaxrnn.lstm(4, variant=name, **kw))(name), reference=ref,
             variant_of=None if name == "vanilla" else "lstm_vanilla")
    for name, ref in _GREFF_REFS.items()
] + [
    CellCase("peephole_lstm_fgr_nog_no_bias",
             lambda **kw: jaxrnn.peephole_lstm(3, variant="FGR", output_gate=False, peepholes="i", use_bias=False,
                                               **kw),
             reference=ref_greff(no_o=True, peep="i", fgr=True), variant_of="lstm_vanilla"),
    CellCase("coupled_lstm_colah", lambda **kw: jaxrnn.coupled_lstm(4, **kw), reference=ref_greff(
        coupling="colah", peep=""), variant_of="lstm_vanilla"),
    CellCase("layer_norm_lstm", lambda **kw: jaxrnn.layer_norm_lstm(4, **kw), reference=ref_layer_norm_lstm(True)),
    CellCase("lstmp", lambda **kw: jaxrnn.lstmp(5, 2, **kw), reference=ref_lstmp),
]
