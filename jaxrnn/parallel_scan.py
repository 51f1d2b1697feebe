"""Parallel-in-time linear recurrences ``h_t = a_t * h_{t-1} + b_t`` on ``jax.lax.associative_scan``.

The pairs ``(a, b)`` compose associatively, ``(a1, b1) . (a2, b2) = (a1 a2, a2 b1 + b2)`` (apply 1, then 2),
so all ``T`` states come out of one scan of depth ``O(log T)`` (Blelloch 1990; Martin & Cundy 2018). The
log-space variant (Heinsen 2023, used by minGRU/minLSTM in Feng et al. 2024) keeps ``log a`` and ``log b`` and
combines with ``logaddexp``, which never under- or overflows for long sequences.

Both functions take the time-major layout and the prefix mask of :class:`jaxrnn.SequenceFn`: at masked steps the
recurrence is the identity (``a = 1, b = 0``), so the state after the last step is the state after each
sequence's last valid step, and a sequence of length 0 returns ``h0`` exactly.

Resets (packed sequences, :class:`jaxrnn.ResetSequenceFn`): ``resets [T, *B]`` flags the steps whose entering
state is ``h_reset`` instead of ``h_{t-1}``. For the multiply-add scan that is data, ``a_t := 0`` and
``b_t := b_t + a_t h_reset`` (any ``h_reset``, learned or not); the log-space scan keeps ``b > 0`` by a segmented
scan instead (:func:`log_linear_recurrence`). Flags at masked steps are ignored.
"""

from __future__ import annotations

from typing import Optional, Tuple

import jax
import jax.numpy as jnp

from jaxrnn import sequences
from jaxrnn.kernels import pallas_linear_recurrence

Array = jax.Array


def _combine(left, right):
  a1, b1 = left
  a2, b2 = right
  return a1 * a2, a2 * b1 + b2


def _combine_log(left, right):
  la1, lb1 = left
  la2, lb2 = right
  return la1 + la2, jnp.logaddexp(lb1 + la2, lb2)


def _check_resets(name_a: str, a: Array, h0: Array, resets: Optional[Array], h_reset: Optional[Array]) -> None:
  if (resets is None) != (h_reset is None):
    raise ValueError(f"resets and h_reset go together (the flags and the state a flagged step starts from); got "
                     f"resets={'None' if resets is None else 'an array'} and h_reset="
                     f"{'None' if h_reset is None else 'an array'}")
  if resets is None or h_reset is None:
    return
  if resets.dtype != jnp.bool_:
    raise TypeError(f"resets must be a bool array [T, *B], got dtype {resets.dtype}")
  if resets.ndim > a.ndim or resets.ndim < 1 or tuple(resets.shape) != tuple(a.shape[:resets.ndim]):
    raise ValueError(f"resets must have shape [T, *B], a prefix of {name_a}'s shape {a.shape}, got {resets.shape}")
  if tuple(h_reset.shape) != tuple(h0.shape):
    raise ValueError(f"h_reset must have the shape of h0 {tuple(h0.shape)}, got {h_reset.shape}")


def _valid_resets(resets: Optional[Array], mask: Optional[Array]) -> Optional[Array]:
  """The flags of the valid steps (a flag at a padded step is ignored)."""
  if resets is None or mask is None:
    return resets
  n = max(resets.ndim, mask.ndim)  # both are prefixes of the scanned shape
  return sequences.expand_to(resets, n) & sequences.expand_to(mask, n)


def _check(name_a: str, a: Array, name_b: str, b: Array, h0: Array, mask: Optional[Array]) -> None:
  if a.shape != b.shape:
    raise ValueError(f"{name_a} and {name_b} must have the same shape [T, *B, ...], got {a.shape} and {b.shape}")
  if a.ndim < 1:
    raise ValueError(f"{name_a} must have a leading time axis [T, *B, ...], got shape {a.shape}")
  if tuple(h0.shape) != tuple(a.shape[1:]):
    raise ValueError(f"h0 must have shape {tuple(a.shape[1:])} ({name_a} without its time axis), got {h0.shape}")
  if mask is not None and mask.dtype != jnp.bool_:
    raise TypeError(f"mask must be a bool array [T, *B], got dtype {mask.dtype}")
  if mask is not None and (mask.ndim > a.ndim or tuple(mask.shape) != tuple(a.shape[:mask.ndim])):
    raise ValueError(f"mask must have shape [T, *B], a prefix of {name_a}'s shape {a.shape}, got {mask.shape}")


def linear_recurrence(a: Array, b: Array, h0: Array, mask: Optional[Array] = None, *, kernel: str = "xla",
                      resets: Optional[Array] = None, h_reset: Optional[Array] = None) -> Tuple[Array, Array]:
  """All states of ``h_t = a_t * h_{t-1} + b_t`` (elementwise) with one associative scan (or the Pallas kernel).

  Args:
    a: ``[T, *B, ...]`` decays (real or complex).
    b: ``[T, *B, ...]`` inputs, same shape and dtype as ``a``.
    h0: ``[*B, ...]`` the state before the first step.
    mask: ``None`` or boolean ``[T, *B]``, a prefix of valid steps per sequence; masked steps keep the state.
    kernel: ``"xla"`` (``jax.lax.associative_scan``) or ``"pallas"`` (one sequential Pallas kernel,
      :mod:`jaxrnn.kernels.pallas_linear_recurrence`; interpret mode on CPU). Same values and gradients.
    resets: ``None`` or boolean ``[T, *B]``: at a flagged step the state entering it is ``h_reset``
      (``h_t = a_t h_reset + b_t``), as input data (``a_t := 0``, ``b_t := b_t + a_t h_reset``), so both kernels
      take it.
    h_reset: ``[*B, ...]`` (``h0``'s shape), the state a flagged step starts from; with ``resets`` only.

  Returns:
    ``(hs, h_last)``: ``hs: [T, *B, ...]`` the state after every step (masked steps repeat the last valid state)
    and ``h_last: [*B, ...]`` the state after the last step.

  Example:

    >>> import jax.numpy as jnp
    >>> hs, last = linear_recurrence(jnp.full((3,), 0.5), jnp.ones(3), jnp.array(4.0))
    >>> hs.tolist(), float(last)
    ([3.0, 2.5, 2.25], 2.25)
  """
  _check("a", a, "b", b, h0, mask)
  _check_resets("a", a, h0, resets, h_reset)
  if kernel not in ("xla", "pallas"):
    raise ValueError(f"kernel must be 'xla' or 'pallas', got {kernel!r}")
  resets = _valid_resets(resets, mask)
  if resets is not None and h_reset is not None:
    r = sequences.expand_to(resets, a.ndim)
    b = jnp.where(r, a * h_reset.astype(b.dtype)[None] + b, b)
    a = jnp.where(r, jnp.zeros_like(a), a)
  if mask is not None:
    m = sequences.expand_to(mask, a.ndim)
    a = jnp.where(m, a, jnp.ones_like(a))
    b = jnp.where(m, b, jnp.zeros_like(b))
  if kernel == "pallas":
    hs = pallas_linear_recurrence.linear_recurrence(a, b, h0.astype(b.dtype))
    return hs, hs[-1]
  b = b.at[0].set(a[0] * h0.astype(b.dtype) + b[0])  # fold the initial state into the first step
  hs = _scan_from_zero(a, b)
  return hs, hs[-1]


def _forward_scan(a, b):
  return jax.lax.associative_scan(_combine, (a, b), axis=0)[1]


@jax.custom_jvp
def _scan_from_zero(a, b):
  """``h_t = a_t h_{t-1} + b_t`` from ``h_{-1} = 0``. Its tangent is the same linear recurrence,
  ``dh_t = a_t dh_{t-1} + (da_t h_{t-1} + db_t)``: one more scan (forward mode, any order); reverse mode is JAX's
  transpose of that scan."""
  return _forward_scan(a, b)


@_scan_from_zero.defjvp
def _scan_jvp(primals, tangents):
  a, b = primals
  da, db = tangents
  hs = _scan_from_zero(a, b)
  h_prev = jnp.concatenate([jnp.zeros_like(hs[:1]), hs[:-1]], axis=0)
  return hs, _forward_scan(a, da * h_prev + db)


def _combine_log_segmented(left, right):
  """:func:`_combine_log` where a right element that starts a segment (``r2``) discards what came before it."""
  la1, lb1, r1 = left
  la2, lb2, r2 = right
  la, lb = _combine_log((la1, lb1), (la2, lb2))
  return jnp.where(r2, la2, la), jnp.where(r2, lb2, lb), r1 | r2


def log_linear_recurrence(log_a: Array, log_b: Array, h0: Array, mask: Optional[Array] = None, *,
                          resets: Optional[Array] = None, h_reset: Optional[Array] = None) -> Tuple[Array, Array]:
  """All states of ``h_t = exp(log_a_t) * h_{t-1} + exp(log_b_t)``, scanned in log space.

  The input term is positive (``exp(log_b)``), as in minGRU/minLSTM where it is ``z_t * g(h~_t)``; the initial
  state may have any sign: ``h_t = exp(sum_{s<=t} log a_s) * h0 + exp(log_h~_t)`` where ``log_h~`` (the state
  started from 0) is scanned with the operator ``(la1, lb1) . (la2, lb2) = (la1 + la2, logaddexp(lb1 + la2,
  lb2))``.

  Args:
    log_a: ``[T, *B, ...]`` log decays (real, usually ``<= 0``).
    log_b: ``[T, *B, ...]`` log inputs (real).
    h0: ``[*B, ...]`` the state before the first step.
    mask: ``None`` or boolean ``[T, *B]`` prefix mask; masked steps keep the state.
    resets, h_reset: as in :func:`linear_recurrence`. ``a_t h_reset`` may be negative, so it is not folded into
      ``b``: a segmented scan (an element that starts a segment discards what came before it) gives each step's
      ``log`` of the decay product and of the state since its segment's start, and
      ``h_t = exp(sum log a) * (h0 or h_reset) + exp(log h~_t)`` (``h_reset`` once a flag has been seen).

  Returns:
    ``(hs, h_last)`` as in :func:`linear_recurrence`.

  Example:

    >>> import jax.numpy as jnp
    >>> hs, _ = log_linear_recurrence(jnp.log(jnp.full((3,), 0.5)), jnp.zeros(3), jnp.array(4.0))
    >>> [round(v, 6) for v in hs.tolist()]
    [3.0, 2.5, 2.25]
  """
  _check("log_a", log_a, "log_b", log_b, h0, mask)
  _check_resets("log_a", log_a, h0, resets, h_reset)
  resets = _valid_resets(resets, mask)
  if mask is not None:
    m = sequences.expand_to(mask, log_a.ndim)
    # The identity step: a = 1 and b = 0, with a finite stand-in for log 0 (no inf - inf in gradients).
    tiny = jnp.asarray(jnp.finfo(log_b.dtype).min / 4, log_b.dtype)
    log_a = jnp.where(m, log_a, jnp.zeros_like(log_a))
    log_b = jnp.where(m, log_b, jnp.full_like(log_b, tiny))
  if resets is None or h_reset is None:
    cum_log_a, log_h = jax.lax.associative_scan(_combine_log, (log_a, log_b), axis=0)
    hs = jnp.exp(cum_log_a) * h0.astype(log_b.dtype)[None] + jnp.exp(log_h)
    return hs, hs[-1]
  r = jnp.broadcast_to(sequences.expand_to(resets, log_a.ndim), log_a.shape)
  cum_log_a, log_h, seen = jax.lax.associative_scan(_combine_log_segmented, (log_a, log_b, r), axis=0)
  start = jnp.where(seen, h_reset.astype(log_b.dtype)[None], h0.astype(log_b.dtype)[None])
  hs = jnp.exp(cum_log_a) * start + jnp.exp(log_h)
  return hs, hs[-1]


def zero_masked(x: Array, mask: Optional[Array]) -> Array:
  """``x: [T, *B, ...]`` with zeros at the masked steps (``mask: [T, *B]`` or ``None``).

  Sequence paths zero the inputs of padded steps first, so that whatever the padding holds never reaches the
  computation (not even as a ``nan`` in a gradient), and zero their outputs last.
  """
  if mask is None:
    return x
  return jnp.where(sequences.expand_to(mask, x.ndim), x, jnp.zeros_like(x))


def exp_linear_recurrence(log_a: Array, log_b: Array, h0: Array, mask: Optional[Array] = None, *,
                          resets: Optional[Array] = None, h_reset: Optional[Array] = None) -> Tuple[Array, Array]:
  """:func:`log_linear_recurrence`'s function, scanned as :func:`linear_recurrence` of ``(exp(log_a), exp(log_b))``.

  For decays ``0 < a <= 1`` (``log_a <= 0``) the multiply-add scan cannot overflow (it never divides; products
  that underflow are 0, their true limit), and it is much cheaper than combining with ``logaddexp``.
  """
  _check("log_a", log_a, "log_b", log_b, h0, mask)
  return linear_recurrence(jnp.exp(log_a), jnp.exp(log_b), h0.astype(log_b.dtype), mask, resets=resets,
                           h_reset=h_reset)
