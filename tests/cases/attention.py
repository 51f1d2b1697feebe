"""Attention wrappers (jaxrnn.attention_wrapper) and their float64 NumPy step references.

The memory is bound with ``jaxrnn.bind_memory`` so that the plain ``initial_carry(params, batch_shape)`` works; the
generic ``setup`` then randomises every float carry leaf (memory, keys, context, weights), which the references
read from the carry, and leaves the bool mask (one padded memory position) alone. ``check_grads`` is off:
``jax.test_util.check_grads`` cannot perturb the bool mask leaf of the carry; ``tests/test_attention_wrapper.py``
checks the gradients numerically with the mask held fixed.
"""

import numpy as np

import jaxrnn
from tests.cases.core import ref_gru, ref_lstm
from tests.registry import CellCase

S, D = 4, 3
MEMORY = np.linspace(-1.0, 1.0, S * D).reshape(S, D)
MASK = np.array([True, True, True, False])


def np_masked_softmax(scores, mask):
  s = np.where(mask, scores, -np.inf)
  e = np.where(mask, np.exp(s - s[mask].max()), 0.0) if mask.any() else np.zeros_like(scores)
  return e / e.sum() if mask.any() else e


def np_additive_score(p, keys, query, prev_weights):
  z = keys + query @ p.w_query
  if p.w_location is not None:
    K = p.w_location.shape[0]
    padded = np.concatenate([np.zeros(K // 2), prev_weights, np.zeros(K // 2)])
    windows = np.stack([padded[s:s + K] for s in range(len(prev_weights))])  # [S, K]
    z = z + windows @ p.w_location
  return np.tanh(z) @ p.v


def np_luong_score(scale):
  def score(p, keys, query, prev_weights):
    e = keys @ query
    return e / np.sqrt(query.shape[0]) if scale else e
  return score


def ref_wrapper(ref_cell, np_score):
  def step(p, carry, x):
    cell_carry, h = ref_cell(p.cell, carry.cell, np.concatenate([x, carry.attention]))
    weights = np_masked_softmax(np_score(p.attention, carry.keys, h, carry.weights), carry.mask)
    context = weights @ carry.memory
    a = context if p.w_out is None else np.tanh(np.concatenate([h, context]) @ p.w_out)
    return carry._replace(cell=cell_carry, attention=a, context=context, weights=weights), a
  return step


def make(cell, mechanism, **kw):
  def build(param_dtype, dtype):
    wrapped = jaxrnn.attention_wrapper(cell(param_dtype=param_dtype, dtype=dtype), mechanism(param_dtype, dtype),
                                       memory_size=D, param_dtype=param_dtype, dtype=dtype, **kw)
    return jaxrnn.bind_memory(wrapped, MEMORY, MASK)
  return build


CASES = [
    CellCase("attention_location_lstm",
             make(lambda **k: jaxrnn.lstm(4, **k),
                  lambda pd, d: jaxrnn.additive_attention(5, location_kernel_size=3, param_dtype=pd, dtype=d),
                  attention_layer_size=3),
             reference=ref_wrapper(ref_lstm, np_additive_score)),
    CellCase("attention_luong_gru",
             make(lambda **k: jaxrnn.gru(4, **k),
                  lambda pd, d: jaxrnn.luong_attention(scale=True, param_dtype=pd, dtype=d)),
             reference=ref_wrapper(ref_gru(reset_after=True), np_luong_score(True)),
             variant_of="attention_location_lstm"),
]
