"""The mLSTM of xLSTM (Beck et al. 2024): a matrix memory with exponential gating, and its parallel form."""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import initializers
from jaxrnn import parallel_scan
from jaxrnn.cells import _dense
from jaxrnn.cells import _parts
from jaxrnn.types import Cell


class MLSTMParams(NamedTuple):
  """Parameters of :func:`mlstm`. Blocks of ``w`` are ordered ``[q, k, v, o]`` (``H`` each), then ``[i, f]``
  (one column per head each)."""

  w: jax.Array  # [F, 4H + 2NH] input kernel
  b: jax.Array  # [4H + 2NH] bias (the forget block starts at forget_bias)


class MLSTMCarry(NamedTuple):
  """Carry of :func:`mlstm` (per head: the memory, the normaliser and the stabiliser, all in stabilised form)."""

  c: jax.Array  # [*B, NH, DH, DH] matrix memory C (value x key)
  n: jax.Array  # [*B, NH, DH] normaliser n
  m: jax.Array  # [*B, NH] stabiliser m (log scale of C and n)


def _exp_neg(m: jax.Array) -> jax.Array:
  """``exp(-m)`` capped at the largest finite ``exp`` of ``m``'s dtype.

  After long decays (saturating inputs) the stabiliser ``m`` can fall below ``-88`` in float32/bfloat16, where
  ``exp(-m)`` is ``inf``: the output was still ``0`` but its gradient was ``0 * inf = NaN``. Capped, the
  normaliser is ``>= exp(87.7)`` there and ``h`` stays ~``1e-38 * C q`` (zero in practice), gradients finite.
  """
  cap = math.log(float(jnp.finfo(m.dtype).max)) - 1.0
  return jnp.exp(-jnp.maximum(m, jnp.asarray(-cap, m.dtype)))


def mlstm(
    hidden_size: int,
    *,
    num_heads: int = 1,
    forget_bias: float = 3.0,
    eps: float = 1e-6,
    kernel_init: Callable = initializers.lecun_normal(),
    bias_init: Callable = initializers.zeros,
    dtype: Optional[Any] = None,
    param_dtype: Any = jnp.float32,
    precision: Any = None,
) -> Cell:
  r"""mLSTM: an LSTM with a matrix memory, exponential input gate and no hidden-to-hidden connection.

  Per head (``DH = H / NH``), with the stabiliser ``m`` that keeps every ``exp`` at most 1:

  .. math::

     q_t, k_t, v_t &= x_t W_q, \ x_t W_k / \sqrt{DH}, \ x_t W_v \ (+ b), \quad o_t = \sigma(x_t W_o + b_o) \\
     \log f_t &= \log \sigma(\tilde f_t), \quad m_t = \max(\log f_t + m_{t-1}, \tilde i_t) \\
     i'_t &= \exp(\tilde i_t - m_t), \quad f'_t = \exp(\log f_t + m_{t-1} - m_t) \\
     C_t &= f'_t C_{t-1} + i'_t \, v_t k_t^\top, \quad n_t = f'_t n_{t-1} + i'_t k_t \\
     h_t &= o_t \odot \frac{C_t q_t}{\max(|n_t^\top q_t|, \exp(-m_t)) + \epsilon}

  (the paper's ``max(|n^T q|, 1)`` in the unstabilised scale). ``epsilon`` is the official xLSTM code's
  ``eps = 1e-6``: when an input gate is far above the forget path (``m_t > 88`` in float32/bfloat16)
  ``exp(-m_t)`` underflows and ``n_t^T q_t`` can round to 0 (bfloat16 at T = 10,000 with saturating
  inputs), so without it ``h`` was ``inf`` and the gradient ``-C q / den^2`` overflowed float32. ``sequence`` is
  the parallel form of the paper:
  with ``D_{ts} = exp(sum_{s<r<=t} log f_r + i~_s)`` for ``s <= t`` (and the initial state as a source at
  ``s = 0``), ``h~_t = sum_s D_ts (q_t . k_s) v_s / max(|sum_s D_ts (q_t . k_s)|, 1)`` — a masked
  ``[T, T]`` attention per head, so ``O(T^2)`` work and memory (no chunkwise form yet).
  ``jaxrnn.unroll`` uses it in ``mode="auto"``/``"sequence"``; ``mode="step"`` runs the recurrence.

  Args:
    hidden_size: ``H`` (the output size and the total width of ``q``, ``k``, ``v``).
    num_heads: ``NH``, a divisor of ``H``.
    forget_bias: the initial bias of the forget gates (xLSTM starts forget gates open).
    eps: added to the normaliser (``>= 0``; ``0`` is the paper's formula exactly, which can divide by 0 in
      low precision).
    kernel_init, bias_init: draw the ``[F, H]`` and ``[F, NH]`` blocks of ``w: [F, 4H + 2NH]`` and
      ``b: [4H + 2NH]`` (then ``forget_bias`` is added).
    dtype, param_dtype, precision: see "Common arguments" in :mod:`jaxrnn.cells`.

  Returns:
    A :class:`jaxrnn.Cell` with ``MLSTMParams`` and ``MLSTMCarry(c, n, m)``, and a parallel ``sequence`` path.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.mlstm(8, num_heads=2)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> carry = cell.initial_carry(params, (2,))
    >>> carry.c.shape, carry.m.shape
    ((2, 2, 4, 4), (2, 2))
    >>> _, hs = jaxrnn.unroll(cell, params, carry, jnp.ones((2, 5, 3)))
    >>> _, hs_step = jaxrnn.unroll(cell, params, carry, jnp.ones((2, 5, 3)), mode="step")
    >>> hs.shape, bool(jnp.allclose(hs, hs_step, atol=1e-6))
    ((2, 5, 8), True)
  """
  hidden_size = _checks.positive_int("hidden_size", hidden_size)
  num_heads = _checks.positive_int("num_heads", num_heads)
  if hidden_size % num_heads:
    raise ValueError(f"num_heads must divide hidden_size, got hidden_size={hidden_size}, num_heads={num_heads}")
  eps = _checks.non_negative_float("eps", eps)
  dtype = _checks.dtype("dtype", dtype)
  param_dtype = _checks.dtype("param_dtype", param_dtype)
  H, NH = hidden_size, num_heads
  DH = H // NH
  width = 4 * H + 2 * NH

  def init(key, input_size):
    input_size = _dense.check_init_args(key, input_size)
    k_w, k_g, k_b = jax.random.split(key, 3)
    w = jnp.concatenate([_dense.init_blocks(k_w, kernel_init, input_size, H, 4, param_dtype),
                         _dense.init_blocks(k_g, kernel_init, input_size, NH, 2, param_dtype)], axis=1)
    b = bias_init(k_b, (width,), param_dtype)
    b = b.at[4 * H + NH:].add(jnp.asarray(forget_bias, param_dtype))
    return MLSTMParams(w=w, b=b)

  initial_carry = _parts.zeros_carry(MLSTMCarry, lambda params: params.w.dtype, c=(NH, DH, DH), n=(NH, DH), m=(NH,))

  def input_transform(params, xs):
    xs = _checks.step_input("x", xs, (params.w.shape[0],))
    return _dense.project(xs, params.w, params.b, dtype, precision)

  def check_carry(carry, batch_shape):
    _checks.carry_type("carry", carry, MLSTMCarry)
    _checks.carry_leaf("carry.c", carry.c, batch_shape, (NH, DH, DH))
    _checks.carry_leaf("carry.n", carry.n, batch_shape, (NH, DH))
    _checks.carry_leaf("carry.m", carry.m, batch_shape, (NH,))

  def split(u):
    """``u: [..., 4H + 2NH]`` -> ``q, k, v: [..., NH, DH]``, ``o: [..., H]``, ``i~, log f: [..., NH]``."""
    q, k, v, o, i_pre, f_pre = jnp.split(u, [H, 2 * H, 3 * H, 4 * H, 4 * H + NH], axis=-1)
    heads = lambda a: a.reshape(a.shape[:-1] + (NH, DH))
    return heads(q), heads(k) / math.sqrt(DH), heads(v), jax.nn.sigmoid(o), i_pre, -jax.nn.softplus(-f_pre)

  def step_transformed(params, carry, u):
    u = _dense.check_transformed("input_transform(x)", u, width)
    check_carry(carry, u.shape[:-1])
    cdt = carry.m.dtype
    q, k, v, o, i_pre, log_f = split(u.astype(cdt))
    m = jnp.maximum(log_f + carry.m, i_pre)
    i_gate = jnp.exp(i_pre - m)
    f_gate = jnp.exp(log_f + carry.m - m)
    c = f_gate[..., None, None] * carry.c + i_gate[..., None, None] * (v[..., :, None] * k[..., None, :])
    n = f_gate[..., None] * carry.n + i_gate[..., None] * k
    num = jnp.einsum("...vk,...k->...v", c, q)
    den = jnp.maximum(jnp.abs(jnp.sum(n * q, axis=-1)), _exp_neg(m)) + jnp.asarray(eps, cdt)
    h = o * (num / den[..., None]).reshape(o.shape)
    return MLSTMCarry(c=c, n=n, m=m), h

  step = _parts.step_of(input_transform, step_transformed)

  def check(params, carry, xs):
    xs = _checks.step_input("xs", xs, (params.w.shape[0],))
    check_carry(carry, xs.shape[1:-1])
    return carry.m.dtype

  def run(params, carry, u, mask, kernel):
    del kernel  # "xla": the chunk-free quadratic form has no kernel of its own
    cdt = carry.m.dtype
    num_steps = u.shape[0]
    q, k, v, o, i_pre, log_f = split(u)  # time-major: [T, *B, NH, (DH)]
    if mask is not None:
      log_f = jnp.where(mask[..., None], log_f, jnp.zeros_like(log_f))  # padded steps keep the state
    # Heads-major, time last but one: [*B, NH, T, DH] and gates [*B, NH, T].
    q, k, v = (jnp.moveaxis(a, 0, -2) for a in (q, k, v))
    i_pre, log_f = (jnp.moveaxis(a, 0, -1) for a in (i_pre, log_f))
    cum_f = jnp.cumsum(log_f, axis=-1)  # F_t = sum_{r<=t} log f_r
    log_d = cum_f[..., :, None] - cum_f[..., None, :] + i_pre[..., None, :]  # [*B, NH, T(t), T(s)]
    keep = jnp.tril(jnp.ones((num_steps, num_steps), bool))
    if mask is not None:
      valid = jnp.moveaxis(mask, 0, -1)[..., None, None, :]  # [*B, 1, 1, T(s)]
      keep = keep.reshape((1,) * (valid.ndim - 2) + keep.shape) & valid
    keep = jnp.broadcast_to(keep, log_d.shape)
    log_d = jnp.where(keep, log_d, jnp.full_like(log_d, -jnp.inf))
    log_w0 = cum_f + carry.m[..., None]  # the initial state's weight, [*B, NH, T]
    m = jnp.maximum(jnp.max(log_d, axis=-1), log_w0)
    w0 = jnp.exp(log_w0 - m)
    s = jnp.exp(log_d - m[..., None]) * jnp.einsum("...tk,...sk->...ts", q, k)
    num = jnp.einsum("...ts,...sv->...tv", s, v) + w0[..., None] * jnp.einsum("...vk,...tk->...tv", carry.c, q)
    den = jnp.sum(s, axis=-1) + w0 * jnp.einsum("...k,...tk->...t", carry.n, q)
    den = jnp.maximum(jnp.abs(den), _exp_neg(m)) + jnp.asarray(eps, den.dtype)
    h = num / den[..., None]  # [*B, NH, T, DH]
    h = jnp.moveaxis(h, -2, 0)
    hs = o * h.reshape(h.shape[:-2] + (H,))
    # The state after the last step: row t = T - 1 of the decay matrix.
    m_last = m[..., -1]
    w_last = jnp.exp(log_d[..., -1, :] - m_last[..., None])  # [*B, NH, T(s)]
    w0_last = w0[..., -1]
    c = jnp.einsum("...s,...sv,...sk->...vk", w_last, v, k) + w0_last[..., None, None] * carry.c
    n = jnp.einsum("...s,...sk->...k", w_last, k) + w0_last[..., None] * carry.n
    final = MLSTMCarry(c=c.astype(cdt), n=n.astype(cdt), m=m_last.astype(cdt))
    return final, parallel_scan.zero_masked(hs, mask).astype(cdt)

  return Cell(init=init, initial_carry=initial_carry, step=step, input_transform=input_transform,
              step_transformed=step_transformed,
              sequence=_parts.parallel_path(input_transform, check, run, "mlstm", ("xla",)), name="mlstm")
