"""Parallel-in-time cells (minGRU, minLSTM, LRU, RG-LRU, sLSTM, mLSTM, ParaGRU, ParaLSTM) and their float64 NumPy
references."""

import functools

import numpy as np

import jaxrnn
from tests.cases.combinators import packed_flags
from tests.registry import CellCase


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def g(x):
  return np.where(x >= 0, x + 0.5, sigmoid(np.minimum(x, 0.0)))


def ref_min_gru(log_space):
  def step(p, carry, x):
    H = carry.h.shape[-1]
    k = x @ p.w + (p.b if p.b is not None else 0.0)
    z = sigmoid(k[:H])
    cand = g(k[H:]) if log_space else k[H:]
    h = (1.0 - z) * carry.h + z * cand
    return jaxrnn.MinGRUCarry(h=h), h
  return step


def ref_min_lstm(log_space):
  def step(p, carry, x):
    H = carry.h.shape[-1]
    k = x @ p.w + (p.b if p.b is not None else 0.0)
    f, i = sigmoid(k[:H]), sigmoid(k[H:2 * H])
    cand = g(k[2 * H:]) if log_space else k[2 * H:]
    h = f / (f + i) * carry.h + i / (f + i) * cand
    return jaxrnn.MinLSTMCarry(h=h), h
  return step


def ref_lru(p, carry, x):
  lam = np.exp(-np.exp(p.nu_log) + 1j * np.exp(p.theta_log))
  state = carry.x_re + 1j * carry.x_im
  state = lam * state + np.exp(p.gamma_log) * (x @ (p.b_re + 1j * p.b_im))
  h = np.real(state @ (p.c_re + 1j * p.c_im)) + x @ p.d
  return jaxrnn.LRUCarry(x_re=np.real(state), x_im=np.imag(state)), h


def ref_rg_lru(resets, c=8.0):
  def step(p, carry, x):
    H = carry.h.shape[-1]
    reset = resets and x[-1] > 0.5  # the packed flag of tests.cases.combinators.packed_flags
    feats = x[:-1] if resets else x
    k = feats @ p.w + p.b
    r, i, v = sigmoid(k[:H]), sigmoid(k[H:2 * H]), k[2 * H:]
    a = sigmoid(p.lam) ** (c * r)
    if reset:
      h = i * v
    else:
      h = a * carry.h + np.sqrt(1.0 - a ** 2) * (i * v)
    return jaxrnn.RGLRUCarry(h=h), h
  return step


def ref_mlstm(p, carry, x, eps=1e-6):
  NH, DH = carry.n.shape
  H = NH * DH
  u = x @ p.w + p.b
  q, k, v = (u[j * H:(j + 1) * H].reshape(NH, DH) for j in range(3))
  k = k / np.sqrt(DH)
  o = sigmoid(u[3 * H:4 * H])
  i_pre, f_pre = u[4 * H:4 * H + NH], u[4 * H + NH:]
  # Unstabilised in exact arithmetic: C_bar = exp(m) C; the stabiliser only rescales.
  log_f = np.log(sigmoid(f_pre))
  m = np.maximum(log_f + carry.m, i_pre)
  f_gate, i_gate = np.exp(log_f + carry.m - m), np.exp(i_pre - m)
  c = np.empty_like(carry.c)
  n = np.empty_like(carry.n)
  h = np.empty((NH, DH))
  for j in range(NH):
    c[j] = f_gate[j] * carry.c[j] + i_gate[j] * np.outer(v[j], k[j])
    n[j] = f_gate[j] * carry.n[j] + i_gate[j] * k[j]
    h[j] = c[j] @ q[j] / (max(abs(n[j] @ q[j]), np.exp(-m[j])) + eps)
  return jaxrnn.MLSTMCarry(c=c, n=n, m=m), o * h.reshape(H)


def ref_slstm(p, carry, x):
  H = carry.h.shape[-1]
  pre = x @ p.w_i + carry.h @ p.w_h + p.b
  z, i_pre, f_pre, o = np.tanh(pre[:H]), pre[H:2 * H], pre[2 * H:3 * H], sigmoid(pre[3 * H:])
  log_f = np.log(sigmoid(f_pre))
  m = np.where(carry.n == 0, i_pre, np.maximum(log_f + carry.m, i_pre))  # empty state: m = i~ (xLSTM code)
  c = np.exp(log_f + carry.m - m) * carry.c + np.exp(i_pre - m) * z
  n = np.exp(log_f + carry.m - m) * carry.n + np.exp(i_pre - m)
  h = o * c / n
  return jaxrnn.SLSTMCarry(h=h, c=c, n=n, m=m), h


CASES = [
    CellCase("min_gru", lambda **kw: jaxrnn.min_gru(4, **kw), reference=ref_min_gru(True)),
    CellCase("min_gru_linear", lambda **kw: jaxrnn.min_gru(4, log_space=False, **kw), reference=ref_min_gru(False),
             variant_of="min_gru"),
    CellCase("min_gru_log_scan", lambda **kw: jaxrnn.min_gru(4, log_scan=True, **kw), reference=ref_min_gru(True)),
    CellCase("min_lstm", lambda **kw: jaxrnn.min_lstm(4, **kw), reference=ref_min_lstm(True)),
    CellCase("min_lstm_log_scan", lambda **kw: jaxrnn.min_lstm(4, log_scan=True, **kw),
             reference=ref_min_lstm(True), variant_of="min_lstm"),
    CellCase("min_lstm_linear", lambda **kw: jaxrnn.min_lstm(4, log_space=False, use_bias=False, **kw),
             reference=ref_min_lstm(False), variant_of="min_lstm"),
    CellCase("lru", lambda **kw: jaxrnn.lru(4, state_size=5, **kw), reference=ref_lru),
    CellCase("rg_lru", lambda **kw: jaxrnn.rg_lru(4, **kw), reference=ref_rg_lru(False)),
    CellCase("rg_lru_resets", lambda **kw: packed_flags(jaxrnn.rg_lru(4, resets=True, **kw)), input_shape=(4,),
             reference=ref_rg_lru(True)),
    # Chunks of 2 (the generic checks' T = 5: three chunks, the last padded); mlstm_eps0 in one chunk (the
    # quadratic form).
    CellCase("mlstm", lambda **kw: jaxrnn.mlstm(4, num_heads=2, chunk_size=2, **kw), reference=ref_mlstm),
    CellCase("mlstm_eps0", lambda **kw: jaxrnn.mlstm(4, num_heads=2, eps=0.0, chunk_size=None, **kw),
             reference=functools.partial(ref_mlstm, eps=0.0), variant_of="mlstm"),
    CellCase("slstm", lambda **kw: jaxrnn.slstm(4, **kw), reference=ref_slstm),
]


def ref_para_gru(p, carry, x):
  H = carry.h.shape[-1]
  u = x @ p.w + (p.b if p.b is not None else 0.0)
  a_r, a_z, a_n = p.a[:H], p.a[H:2 * H], p.a[2 * H:]
  r = sigmoid(u[:H] + a_r * carry.h)
  z = sigmoid(u[H:2 * H] + a_z * carry.h)
  n = np.tanh(u[2 * H:] + r * a_n * carry.h)
  h = (1.0 - z) * n + z * carry.h
  return jaxrnn.ParaGRUCarry(h=h), h


def ref_para_lstm(p, carry, x):
  H = carry.h.shape[-1]
  u = x @ p.w + (p.b if p.b is not None else 0.0)
  f = sigmoid(u[:H] + p.a[:H] * carry.h)
  o = sigmoid(u[H:2 * H] + p.a[H:2 * H] * carry.h)
  g = np.tanh(u[2 * H:] + p.a[2 * H:] * carry.h)
  c = f * carry.c + (1.0 - f) * g
  h = o * np.tanh(c)
  return jaxrnn.LSTMCarry(h=h, c=c), h


CASES += [
    CellCase("para_gru", lambda **kw: jaxrnn.para_gru(4, **kw), reference=ref_para_gru),
    CellCase("para_gru_no_bias", lambda **kw: jaxrnn.para_gru(4, use_bias=False, **kw), reference=ref_para_gru,
             variant_of="para_gru"),
    CellCase("para_lstm", lambda **kw: jaxrnn.para_lstm(4, **kw), reference=ref_para_lstm),
]
