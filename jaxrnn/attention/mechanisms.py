"""Attention mechanisms: pure functions that score a query against a memory ``[*B, S, D]`` with a validity mask.

A mechanism is an :class:`AttentionMechanism`, a NamedTuple of pure functions (as a :class:`jaxrnn.Cell` is):

* ``init(key, query_size, memory_size) -> params``;
* ``project_memory(params, memory) -> keys``: the query-independent part, ``[*B, S, D] -> [*B, S, K]``, computed
  once per sequence, outside the decoder's scan (Bahdanau et al.'s ``U_a h_j`` precomputation);
* ``score(params, keys, query, prev_weights) -> scores [*B, S]``: one decoder step.

:func:`attend` turns scores into weights with a masked softmax (weights sum to 1 over the valid positions and are
exactly 0 on masked ones) and returns ``(context, weights)``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional, Tuple, Unpack

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import initializers
from jaxrnn.cells import _dense
from jaxrnn.cells.options import KernelOptions, resolve


class AttentionMechanism(NamedTuple):
  """An attention mechanism: an immutable value of pure functions.

  Fields:
    init: ``init(key, query_size, memory_size) -> params``.
    project_memory: ``project_memory(params, memory [*B, S, D]) -> keys [*B, S, K]``; run once per sequence.
    score: ``score(params, keys [*B, S, K], query [*B, Q], prev_weights [*B, S]) -> scores [*B, S]``
      (unnormalised, in the query's dtype; ``prev_weights`` is only read by location-aware mechanisms).
    name: a short name.
  """

  init: Callable[..., Any]
  project_memory: Callable[..., jax.Array]
  score: Callable[..., jax.Array]
  name: str = "attention"


class AdditiveAttentionParams(NamedTuple):
  """Parameters of :func:`additive_attention`."""

  w_query: jax.Array  # [Q, A] query projection W_a
  w_memory: jax.Array  # [D, A] memory projection U_a (applied once, outside the scan)
  b: jax.Array  # [A] bias
  v: jax.Array  # [A] scoring vector v_a
  w_location: Optional[jax.Array]  # [K, A] location filters (conv F then projection U_f, fused); None if off


class LuongAttentionParams(NamedTuple):
  """Parameters of :func:`luong_attention` (the "general" score)."""

  w: jax.Array  # [D, Q] W_a of score(h_t, h_s) = h_t^T W_a h_s


class DotAttentionParams(NamedTuple):
  """Parameters of :func:`dot_attention`: none."""


def masked_softmax(scores: jax.Array, mask: Optional[jax.Array]) -> jax.Array:
  """Softmax over the last axis restricted to ``mask``: sums to 1 on valid positions, exactly 0 elsewhere.

  A row with no valid position gives all zeros (no NaN, also in the gradient).

  Args:
    scores: ``[*B, S]`` floating.
    mask: ``None`` or ``bool[*B, S]``.

  Example:

    >>> import jax.numpy as jnp
    >>> masked_softmax(jnp.array([0.0, 0.0, 5.0]), jnp.array([True, True, False])).tolist()
    [0.5, 0.5, 0.0]
  """
  if mask is None:
    return jax.nn.softmax(scores, axis=-1)
  mask = jnp.asarray(mask)
  if jnp.issubdtype(mask.dtype, jnp.inexact):
    raise TypeError(f"mask must be a bool array [*B, S], got dtype {mask.dtype}")
  if tuple(mask.shape) != tuple(scores.shape):
    raise ValueError(f"mask must have the shape of scores {tuple(scores.shape)} ([*B, S]), got shape "
                     f"{tuple(mask.shape)}")
  mask = mask.astype(bool)
  safe = jnp.where(mask, scores, jnp.zeros_like(scores))
  shift = jnp.max(jnp.where(mask, safe, jnp.full_like(safe, -jnp.inf)), axis=-1, keepdims=True)
  shift = jax.lax.stop_gradient(jnp.where(jnp.isfinite(shift), shift, jnp.zeros_like(shift)))
  e = jnp.where(mask, jnp.exp(safe - shift), jnp.zeros_like(safe))
  total = jnp.sum(e, axis=-1, keepdims=True)
  return e / jnp.where(total > 0, total, jnp.ones_like(total))


def check_memory(memory: Any, mask: Any) -> Tuple[jax.Array, jax.Array]:
  """Checks ``memory: [*B, S, D]`` (floating) and ``mask: bool[*B, S]`` (``None``: all valid)."""
  memory = _checks.floating("memory", memory)
  if memory.ndim < 2:
    raise ValueError(f"memory must have shape [*B, S, D], got shape {memory.shape}")
  if mask is None:
    return memory, jnp.ones(memory.shape[:-1], bool)
  mask = jnp.asarray(mask)
  if mask.dtype != jnp.bool_:
    raise TypeError(f"memory_mask must be a bool array [*B, S], got dtype {mask.dtype}")
  if tuple(mask.shape) != tuple(memory.shape[:-1]):
    raise ValueError(f"memory_mask must have shape {tuple(memory.shape[:-1])} ([*B, S] of memory), got shape "
                     f"{tuple(mask.shape)}")
  return memory, mask


def attend(mechanism: AttentionMechanism, params: Any, query: jax.Array, keys: jax.Array, memory: jax.Array,
           mask: Optional[jax.Array] = None, prev_weights: Optional[jax.Array] = None
           ) -> Tuple[jax.Array, jax.Array]:
  r"""One attention read: ``(context [*B, D], weights [*B, S])``.

  .. math::

     \alpha_{s} = \frac{m_s \exp e_s}{\sum_{s'} m_{s'} \exp e_{s'}}, \qquad c = \sum_s \alpha_s\, \mathrm{memory}_s

  with ``e = mechanism.score(params, keys, query, prev_weights)`` and the validity mask ``m``.

  Args:
    mechanism: an :class:`AttentionMechanism`.
    params: its parameters.
    query: ``[*B, Q]``, e.g. the decoder's hidden state.
    keys: ``mechanism.project_memory(params, memory)``, ``[*B, S, K]``.
    memory: ``[*B, S, D]``, the values averaged into the context.
    mask: ``None`` or ``bool[*B, S]``, ``True`` at valid memory positions.
    prev_weights: ``[*B, S]``, the previous step's weights (location-aware mechanisms); ``None``: zeros.

  Returns:
    ``(context, weights)``: ``context`` in the query's dtype.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> mech = jaxrnn.dot_attention()
    >>> memory = jnp.eye(3)                                         # [S=3, D=3]
    >>> keys = mech.project_memory(mech.init(jax.random.key(0), 3, 3), memory)
    >>> ctx, w = jaxrnn.attend(mech, (), jnp.array([0., 0., 9.]), keys, memory,
    ...                        mask=jnp.array([True, True, False]))
    >>> w.tolist(), ctx.tolist()
    ([0.5, 0.5, 0.0], [0.5, 0.5, 0.0])
  """
  query = _checks.floating("query", query)
  if prev_weights is None:
    prev_weights = jnp.zeros(keys.shape[:-1], query.dtype)
  scores = mechanism.score(params, keys, query, prev_weights).astype(query.dtype)
  weights = masked_softmax(scores, mask)
  context = jnp.einsum("...s,...sd->...d", weights, memory.astype(query.dtype))
  return context, weights


def kernel_options(factory: str, options: Any) -> Tuple[Callable, Any, Any, Any]:
  """``(kernel_init, dtype, param_dtype, precision)`` of an attention factory's :class:`KernelOptions` (the
  mechanisms' and :func:`jaxrnn.attention.wrapper.attention_wrapper`'s; default ``kernel_init``
  ``glorot_uniform()``)."""
  o = resolve(factory, options, KernelOptions, kernel_init=initializers.glorot_uniform())
  return o.kernel_init, o.dtype, o.param_dtype, o.precision


def _check_init(key: Any, query_size: Any, memory_size: Any) -> Tuple[int, int]:
  """``(Q, D)``: the checked arguments of a mechanism's ``init(key, query_size, memory_size)``."""
  _checks.key("key", key)
  return _checks.positive_int("query_size", query_size), _checks.positive_int("memory_size", memory_size)


def _check_query(query: jax.Array, keys: jax.Array, size: int) -> None:
  _checks.step_input("query", query, (size,))
  if keys.shape[:-2] != query.shape[:-1]:
    raise ValueError(f"query's batch shape {query.shape[:-1]} must equal the memory's {keys.shape[:-2]}")


def _dot_scores(keys: jax.Array, query: jax.Array, size: int, scale: bool, dtype: Optional[Any],
                precision: Any) -> jax.Array:
  """``e_s = keys_s · query [/ sqrt(size)]``: ``keys [*B, S, size]``, ``query [*B, size]`` -> ``[*B, S]``.

  The product runs in the compute dtype (``dtype``, else promoted); the scores have ``query``'s dtype.
  """
  _check_query(query, keys, size)
  cd = _dense.compute_dtype(dtype, query, keys)
  e = jnp.einsum("...sd,...d->...s", keys.astype(cd), query.astype(cd), precision=precision)
  e = e.astype(query.dtype)
  return e / math.sqrt(size) if scale else e


def additive_attention(
    attention_size: int,
    *,
    location_kernel_size: Optional[int] = None,
    **options: Unpack[KernelOptions],
) -> AttentionMechanism:
  r"""Additive (concat) attention of Bahdanau, Cho & Bengio 2015, optionally location-aware (Chorowski et al. 2015).

  .. math::

     e_s = v^\top \tanh(W_a q + U_a\, \mathrm{memory}_s + b\; [+\, U_f (F * \alpha_{t-1})_s])

  ``U_a memory + b`` is the projected memory (``keys``, ``[*B, S, A]``), computed once. With
  ``location_kernel_size=K`` (odd) the previous weights are convolved along ``S`` with ``K``-wide filters; the
  convolution ``F`` followed by the linear ``U_f`` is one ``[K, A]`` matrix here (their product).

  Args:
    attention_size: ``A``.
    location_kernel_size: ``None`` (content only) or the odd filter width ``K`` of the location features.
    **options: :class:`jaxrnn.cells.options.KernelOptions`: ``kernel_init`` (default ``glorot_uniform()``) draws
      the projection matrices; ``dtype`` (of the projections), ``param_dtype``, ``precision``.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> mech = jaxrnn.additive_attention(8)
    >>> p = mech.init(jax.random.key(0), query_size=4, memory_size=6)
    >>> memory = jnp.ones((2, 5, 6))                                # [B, S, D]
    >>> keys = mech.project_memory(p, memory)                       # [B, S, A], once per sequence
    >>> ctx, w = jaxrnn.attend(mech, p, jnp.ones((2, 4)), keys, memory)
    >>> ctx.shape, w.shape
    ((2, 6), (2, 5))
  """
  A = _checks.positive_int("attention_size", attention_size)
  if location_kernel_size is not None:
    K = _checks.positive_int("location_kernel_size", location_kernel_size)
    if K % 2 != 1:
      raise ValueError(f"location_kernel_size must be odd, got {K}")
  kernel_init, dtype, param_dtype, precision = kernel_options("additive_attention", options)

  def init(key, query_size, memory_size):
    Q, D = _check_init(key, query_size, memory_size)
    k_q, k_m, k_v, k_l = jax.random.split(key, 4)
    w_location = None
    if location_kernel_size is not None:
      w_location = kernel_init(k_l, (location_kernel_size, A), param_dtype)
    return AdditiveAttentionParams(
        w_query=kernel_init(k_q, (Q, A), param_dtype), w_memory=kernel_init(k_m, (D, A), param_dtype),
        b=jnp.zeros((A,), param_dtype), v=kernel_init(k_v, (A, 1), param_dtype).reshape(A),
        w_location=w_location)

  def project_memory(params, memory):
    memory = _checks.step_input("memory", memory, (params.w_memory.shape[0],))
    return _dense.project(memory, params.w_memory, params.b, dtype, precision)

  def score(params, keys, query, prev_weights):
    _check_query(query, keys, params.w_query.shape[0])
    q = _dense.project(query, params.w_query, None, dtype, precision)  # [*B, A]
    z = keys + q.reshape(q.shape[:-1] + (1, A)).astype(keys.dtype)  # [*B, S, A]
    if params.w_location is not None:
      K = params.w_location.shape[0]
      r = K // 2
      pad = [(0, 0)] * (prev_weights.ndim - 1) + [(r, r)]
      padded = jnp.pad(prev_weights, pad)
      S = prev_weights.shape[-1]
      windows = jnp.stack([padded[..., j:j + S] for j in range(K)], axis=-1)  # [*B, S, K]
      z = z + _dense.project(windows, params.w_location, None, dtype, precision).astype(z.dtype)
    z = jnp.tanh(z.astype(query.dtype))
    return _dense.project(z, params.v.reshape(A, 1), None, dtype, precision)[..., 0].astype(query.dtype)

  name = "additive_attention" if location_kernel_size is None else "location_attention"
  return AttentionMechanism(init=init, project_memory=project_memory, score=score, name=name)


def luong_attention(
    *,
    scale: bool = False,
    **options: Unpack[KernelOptions],
) -> AttentionMechanism:
  r"""Multiplicative ("general") attention of Luong, Pham & Manning 2015: ``e_s = q^\top W_a \mathrm{memory}_s``.

  The keys ``memory W_a: [*B, S, Q]`` are computed once; a step is one dot product per position. With
  ``scale=True`` the scores are divided by ``sqrt(Q)`` (Vaswani et al. 2017). ``**options``:
  :class:`jaxrnn.cells.options.KernelOptions` (``kernel_init``, default ``glorot_uniform()``, draws ``W_a``).

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> mech = jaxrnn.luong_attention()
    >>> p = mech.init(jax.random.key(0), query_size=4, memory_size=6)
    >>> mech.project_memory(p, jnp.ones((5, 6))).shape             # [S, Q]
    (5, 4)
  """
  kernel_init, dtype, param_dtype, precision = kernel_options("luong_attention", options)

  def init(key, query_size, memory_size):
    Q, D = _check_init(key, query_size, memory_size)
    return LuongAttentionParams(w=kernel_init(key, (D, Q), param_dtype))

  def project_memory(params, memory):
    memory = _checks.step_input("memory", memory, (params.w.shape[0],))
    return _dense.project(memory, params.w, None, dtype, precision)

  def score(params, keys, query, prev_weights):
    del prev_weights
    return _dot_scores(keys, query, params.w.shape[1], scale, dtype, precision)

  return AttentionMechanism(init=init, project_memory=project_memory, score=score,
                            name="scaled_luong_attention" if scale else "luong_attention")


def dot_attention(*, scale: bool = True, dtype: Optional[Any] = None, precision: Any = None) -> AttentionMechanism:
  r"""Parameter-free dot-product attention (Luong's "dot"): ``e_s = q^\top \mathrm{memory}_s [/ \sqrt{D}]``.

  Needs ``query_size == memory_size``. ``scale=True`` (default) is the scaled dot product of Vaswani et al. 2017.
  """
  dtype = _checks.dtype("dtype", dtype)

  def init(key, query_size, memory_size):
    Q, D = _check_init(key, query_size, memory_size)
    if Q != D:
      raise ValueError(f"dot_attention needs query_size == memory_size, got {Q} and {D}")
    return DotAttentionParams()

  def project_memory(params, memory):
    del params
    return _checks.floating("memory", memory)

  def score(params, keys, query, prev_weights):
    del params, prev_weights
    return _dot_scores(keys, query, keys.shape[-1], scale, dtype, precision)

  return AttentionMechanism(init=init, project_memory=project_memory, score=score,
                            name="scaled_dot_attention" if scale else "dot_attention")


def last_position_attention() -> AttentionMechanism:
  """No attention: all weight on the last valid memory position (the encoder's final output), at every step.

  The baseline of the "fixed-length vector" encoder-decoder (Cho et al. 2014): the same decoder, fed one summary
  vector instead of a learned soft alignment. Parameter-free.
  """

  def init(key, query_size, memory_size):
    _check_init(key, query_size, memory_size)
    return DotAttentionParams()

  def project_memory(params, memory):
    del params
    return _checks.floating("memory", memory)[..., :0]  # [*B, S, 0]: no keys needed

  def score(params, keys, query, prev_weights):
    del params, prev_weights
    S = keys.shape[-2]
    # Scores 0, 1000, 2000, ...: the masked softmax puts all weight (exactly) on the last valid position.
    e = 1000.0 * jnp.arange(S, dtype=query.dtype)
    return jnp.broadcast_to(e, keys.shape[:-1])

  return AttentionMechanism(init=init, project_memory=project_memory, score=score, name="last_position")
