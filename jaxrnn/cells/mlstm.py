"""The mLSTM of xLSTM (Beck et al. 2024): a matrix memory with exponential gating, and its parallel form."""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Unpack

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import parallel_scan
from jaxrnn import path_choice
from jaxrnn import sequences
from jaxrnn.cells import _dense
from jaxrnn.cells import _parts
from jaxrnn.cells.options import DenseOptions, resolve
from jaxrnn.types import AutoRuleFn, Cell


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


AUTO_CHUNKWISE: AutoRuleFn = path_choice.crossover_rule({"cpu": path_choice.Crossover(forward=None, gradient=256)})
"""Where ``mode="auto"`` runs the chunkwise form: on CPU, differentiated runs from ``T = 256`` (forward + backward
2.2x / 1.0x / 1.7x faster than the scan of ``step`` at T = 256 / 1024 / 4096, and ``O(T·chunk)`` memory instead of
the scan's ``O(T·DH²)``), forward never (0.35–0.92x); one loaded 2-core run of
``benchmarks/parallel_vs_sequential.py --cells mlstm`` (docs, "Chunkwise mLSTM"); elsewhere always. The one-chunk
form (``chunk_size=None``) keeps :data:`jaxrnn.path_choice.LINEAR_RECURRENCE` (the scan of ``step`` on CPU)."""


def mlstm(
    hidden_size: int,
    *,
    num_heads: int = 1,
    forget_bias: float = 3.0,
    eps: float = 1e-6,
    chunk_size: Optional[int] = 64,
    **options: Unpack[DenseOptions],
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
  inputs), so without it ``h`` was ``inf`` and the gradient ``-C q / den^2`` overflowed float32.

  ``sequence`` is the chunkwise parallel form (as in xLSTM's kernels; Beck et al. 2025, "Tiled Flash Linear
  Attention"): the ``T`` steps are cut into chunks of ``L = chunk_size`` (the last one padded with masked steps).
  Within a chunk it is the paper's parallel form, with ``D_{ts} = exp(sum_{s<r<=t} log f_r + i~_s)`` for
  ``s <= t`` in the chunk and the state entering the chunk as one more source of weight
  ``exp(sum_{r<=t} log f_r + m_in)``: ``h~_t = (sum_s D_ts (q_t . k_s) v_s + w_t C_in q_t) / max(|sum_s D_ts
  (q_t . k_s) + w_t n_in^T q_t|, exp(-m_t))`` with ``m_t`` the largest log weight (the recurrence's stabiliser,
  exactly); across chunks a ``lax.scan`` of ``T / L`` steps carries ``(C, n, m)``. Work ``O(T L DH + T DH^2)``,
  memory ``O(T L + (T / L) DH^2)`` per head (forward and backward: 406 MiB of compiled temp memory for
  ``jit(value_and_grad)`` at ``T = 65,536``, ``H = 64``, one head, ``L = 64``, float32, CPU; the scan of ``step``
  needs 3.2 GiB, benchmarks/mlstm_chunkwise_memory.py). ``chunk_size=None`` is one chunk: the fully parallel
  ``[T, T]`` masked attention (``O(T^2)`` work and memory, no sequential part). The chunk size changes memory and
  speed, never values (equal to the recurrence to rounding: 1e-8 in float64). Resets inside the parallel form
  (:func:`jaxrnn.reset_on`, :class:`jaxrnn.ResetSequenceFn`): a segment's sources stop at its first step, where
  the reset carry enters as the source instead of the chunk's entering state. ``jaxrnn.unroll`` uses it in
  ``mode="auto"``/``"sequence"``; ``mode="step"`` runs the recurrence.

  Args:
    hidden_size: ``H`` (the output size and the total width of ``q``, ``k``, ``v``).
    num_heads: ``NH``, a divisor of ``H``.
    forget_bias: the initial bias of the forget gates (xLSTM starts forget gates open).
    eps: added to the normaliser (``>= 0``; ``0`` is the paper's formula exactly, which can divide by 0 in
      low precision).
    chunk_size: ``L``, the steps per chunk of the sequence path (a positive int), or
      ``None`` for one chunk (the quadratic parallel form). Does not change ``step`` or the function computed.
    **options: :class:`jaxrnn.cells.options.DenseOptions`: ``kernel_init`` and ``bias_init`` draw the ``[F, H]`` and
      ``[F, NH]`` blocks of ``w: [F, 4H + 2NH]`` and ``b: [4H + 2NH]`` (then ``forget_bias`` is added); ``dtype``,
      ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``MLSTMParams`` and ``MLSTMCarry(c, n, m)``, and a chunkwise parallel
    ``sequence`` path (with resets, :class:`jaxrnn.ResetSequenceFn`).

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
  chunk_size = None if chunk_size is None else _checks.positive_int("chunk_size", chunk_size)
  opts = resolve("mlstm", options, DenseOptions)
  dtype, param_dtype, precision = opts.dtype, opts.param_dtype, opts.precision
  H, NH = hidden_size, num_heads
  DH = H // NH
  width = 4 * H + 2 * NH

  def init(key, input_size):
    input_size = _dense.check_init_args(key, input_size)
    k_w, k_g, k_b = jax.random.split(key, 3)
    w = jnp.concatenate([_dense.init_blocks(k_w, opts.kernel_init, input_size, H, 4, param_dtype),
                         _dense.init_blocks(k_g, opts.kernel_init, input_size, NH, 2, param_dtype)], axis=1)
    b = opts.bias_init(k_b, (width,), param_dtype)
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

  def run(params, carry, u, mask, kernel, resets):
    del params, kernel  # "xla": the chunkwise form has no kernel of its own
    cdt = carry.m.dtype
    num_steps = u.shape[0]
    concrete = isinstance(num_steps, int)  # else a symbolic length (jax.export): chunks of chunk_size, padded
    if concrete and num_steps == 0:
      return carry, jnp.zeros(u.shape[:-1] + (H,), cdt)
    if chunk_size is None:  # one chunk: the quadratic form
      size, n_chunks, pad = num_steps, 1, 0
    else:
      size = min(chunk_size, num_steps) if concrete else chunk_size  # L
      n_chunks = (num_steps + size - 1) // size
      pad = n_chunks * size - num_steps
    q, k, v, o, i_pre, log_f = split(u)  # time-major: [T, *B, NH, (DH)], o: [T, *B, H]
    valid = jnp.ones(u.shape[:-1], bool) if mask is None else mask  # [T, *B]
    flags = None if resets is None else resets.flags
    if not isinstance(pad, int) or pad:  # masked steps up to a whole number of chunks: they keep the state
      grow = lambda a: jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)])
      q, k, v, i_pre, log_f, valid = (grow(a) for a in (q, k, v, i_pre, log_f, valid))
      flags = None if flags is None else grow(flags)
    log_f = jnp.where(valid[..., None], log_f, jnp.zeros_like(log_f))  # padded steps keep the state
    # Heads-major, chunked: [*B, NH, nC, L, DH], gates [*B, NH, nC, L], flags and validity [*B, 1, nC, L].
    chunk_vec = lambda a: jnp.moveaxis(a, 0, -2).reshape(a.shape[1:-1] + (n_chunks, size, DH))
    chunk_gate = lambda a: jnp.moveaxis(a, 0, -1).reshape(a.shape[1:] + (n_chunks, size))
    q, k, v = (chunk_vec(a) for a in (q, k, v))
    i_pre, log_f = chunk_gate(i_pre), chunk_gate(log_f)
    valid = chunk_gate(valid[..., None])
    cum_f = jnp.cumsum(log_f, axis=-1)  # F_t = sum of log f_r over the chunk's steps r <= t
    causal = jnp.tril(jnp.ones((size, size), bool)).reshape((1,) * (valid.ndim - 1) + (size, size))
    if flags is None:
      same, first, decay = causal, None, cum_f  # one segment per chunk, started by the chunk's entering state
    else:
      seg = jnp.cumsum(chunk_gate(flags[..., None]).astype(jnp.int32), axis=-1)  # resets in the chunk up to t
      same = causal & (seg[..., :, None] == seg[..., None, :])
      first = seg == 0  # before the chunk's first reset: the segment continues from the entering state
      start = chunk_gate(flags[..., None])[..., None, :] & same  # [.., t, s]: s is the reset that starts t's segment
      # The decay of a segment's start state over t: F_t - F_{s-1} at the reset s of t's segment (F_t at none).
      decay = cum_f - jnp.sum(jnp.where(start, (cum_f - log_f)[..., None, :], 0), axis=-1)
    keep = same & valid[..., None, :]  # [.., t, s]: s feeds t
    log_d = cum_f[..., :, None] - cum_f[..., None, :] + i_pre[..., None, :]  # log weight of v_s k_s^T in C_t
    log_d = jnp.where(keep, log_d, jnp.full_like(log_d, -jnp.inf))
    intra_max = jnp.max(log_d, axis=-1)  # [*B, NH, nC, L]; -inf where no step of the chunk feeds t yet

    # The state entering each chunk: a scan over chunks of the summaries of their last step.
    top = intra_max[..., -1]  # [*B, NH, nC]
    w_end = jnp.exp(log_d[..., -1, :] - jnp.where(jnp.isfinite(top), top, 0)[..., None])
    c_int = jnp.einsum("...cs,...csv,...csk->...cvk", w_end, v, k)
    n_int = jnp.einsum("...cs,...csk->...ck", w_end, k)
    first_end = None if first is None else jnp.broadcast_to(first[..., -1], top.shape)
    fresh = None if resets is None else resets.carry

    def source(c_in, n_in, m_in, is_first):
      """The state a segment starts from: the chunk's entering state, or the reset carry after a reset."""
      if is_first is None:
        return c_in, n_in, m_in
      assert fresh is not None  # flags come with the reset carry
      pick = lambda a, f: jnp.where(sequences.expand_to(is_first, a.ndim), a, f)
      return pick(c_in, fresh.c), pick(n_in, fresh.n), pick(m_in, fresh.m)

    def across(state, chunk):
      c_prev, n_prev, m_prev = state
      a, c_i, n_i, d, is_first = chunk
      c_s, n_s, m_s = source(c_prev, n_prev, m_prev, is_first)
      log_w = d + m_s
      m_new = jnp.maximum(a, log_w)
      w_i, w_s = jnp.exp(a - m_new), jnp.exp(log_w - m_new)
      c_new = w_i[..., None, None] * c_i + w_s[..., None, None] * c_s
      n_new = w_i[..., None] * n_i + w_s[..., None] * n_s
      return (c_new, n_new, m_new), (c_prev, n_prev, m_prev)

    to_front = lambda a, lead: jnp.moveaxis(a, lead, 0)
    nb = top.ndim - 2  # len(*B)
    chunks = (to_front(top, -1), to_front(c_int, -3), to_front(n_int, -2), to_front(decay[..., -1], -1),
              None if first_end is None else to_front(first_end, -1))
    final, entering = jax.lax.scan(across, (carry.c, carry.n, carry.m), chunks)
    c_in, n_in, m_in = (jnp.moveaxis(a, 0, nb + 1) for a in entering)  # [*B, NH, nC, ...]

    # The outputs: within each chunk, the quadratic form; the segment's start state enters with weight exp(log_w).
    first_t = None if first is None else jnp.broadcast_to(first, intra_max.shape)
    expand = lambda a: jnp.expand_dims(a, nb + 1)  # [*B, NH, ...] -> [*B, NH, 1, ...] (over chunks)
    if first_t is None:
      m_src = m_in[..., None]
      cq = jnp.einsum("...cvk,...ctk->...ctv", c_in, q)
      nq = jnp.einsum("...ck,...ctk->...ct", n_in, q)
    else:
      assert fresh is not None  # flags come with the reset carry
      m_src = jnp.where(first_t, m_in[..., None], expand(fresh.m)[..., None])
      cq = jnp.where(first_t[..., None], jnp.einsum("...cvk,...ctk->...ctv", c_in, q),
                     jnp.einsum("...vk,...ctk->...ctv", fresh.c, q))
      nq = jnp.where(first_t, jnp.einsum("...ck,...ctk->...ct", n_in, q), jnp.einsum("...k,...ctk->...ct", fresh.n, q))
    log_w0 = decay + m_src
    m = jnp.maximum(intra_max, log_w0)
    w0 = jnp.exp(log_w0 - m)
    s_ts = jnp.exp(log_d - m[..., None]) * jnp.einsum("...tk,...sk->...ts", q, k)
    num = jnp.einsum("...ts,...sv->...tv", s_ts, v) + w0[..., None] * cq
    den = jnp.sum(s_ts, axis=-1) + w0 * nq
    den = jnp.maximum(jnp.abs(den), _exp_neg(m)) + jnp.asarray(eps, den.dtype)
    h = num / den[..., None]  # [*B, NH, nC, L, DH]
    h = h.reshape(h.shape[:-3] + (n_chunks * size, DH))[..., :num_steps, :]
    h = jnp.moveaxis(h, -2, 0)  # [T, *B, NH, DH]
    hs = o * h.reshape(h.shape[:-2] + (H,))
    final = MLSTMCarry(c=final[0].astype(cdt), n=final[1].astype(cdt), m=final[2].astype(cdt))
    return final, parallel_scan.zero_masked(hs, mask).astype(cdt)

  return Cell(init=init, initial_carry=initial_carry, step=step, input_transform=input_transform,
              step_transformed=step_transformed,
              sequence=_parts.parallel_path(input_transform, check, run, "mlstm", ("xla",),
                                            auto=AUTO_CHUNKWISE if chunk_size is not None else
                                            path_choice.LINEAR_RECURRENCE),
              name="mlstm")
