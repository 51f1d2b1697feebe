"""Helpers for right-padded batches of variable-length sequences (time-major arrays ``[T, *B, ...]``)."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import _checks


def check_seq_lengths(seq_lengths: Any, batch_shape: Sequence[int], num_steps: int) -> Optional[jax.Array]:
  """Validates ``seq_lengths: int[*B]`` and returns it as a JAX int32 array (``None`` passes through).

  Concrete lengths outside ``[0, num_steps]`` raise ``ValueError``; traced ones (under ``jit``) cannot be
  checked and are clipped to ``[0, num_steps]``.
  """
  if seq_lengths is None:
    return None
  if not hasattr(seq_lengths, "dtype"):
    seq_lengths = np.asarray(seq_lengths)
  if not jnp.issubdtype(seq_lengths.dtype, jnp.integer):
    raise TypeError(f"seq_lengths must be an integer array, got dtype {seq_lengths.dtype}")
  if tuple(seq_lengths.shape) != tuple(batch_shape):
    raise ValueError(
        f"seq_lengths must have the batch shape of xs {tuple(batch_shape)}, got shape {tuple(seq_lengths.shape)}")
  try:
    concrete = np.asarray(seq_lengths)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
    concrete = None
  if concrete is not None and concrete.size and (concrete.min() < 0 or concrete.max() > num_steps):
    bad = concrete[(concrete < 0) | (concrete > num_steps)]
    raise ValueError(f"seq_lengths must lie in [0, {num_steps}] (the number of time steps), got {bad.tolist()}")
  return jnp.clip(jnp.asarray(seq_lengths, jnp.int32), 0, num_steps)


def length_mask(seq_lengths: jax.Array, num_steps: int) -> jax.Array:
  """``bool[T, *B]``: ``True`` at the valid steps ``t < seq_lengths``.

  >>> import jax.numpy as jnp
  >>> length_mask(jnp.array([1, 3]), 3).T.tolist()
  [[True, False, False], [True, True, True]]
  """
  seq_lengths = _checks.integer_array("seq_lengths", seq_lengths)
  t = jnp.arange(num_steps, dtype=jnp.int32).reshape((num_steps,) + (1,) * seq_lengths.ndim)
  return t < seq_lengths[None]


def expand_to(mask: jax.Array, ndim: int) -> jax.Array:
  """Appends unit axes so that ``mask [*B]`` broadcasts against an array ``[*B, ...]`` of rank ``ndim``."""
  return mask.reshape(mask.shape + (1,) * (ndim - mask.ndim))


def masked_step(m: Optional[jax.Array], new_carry: Any, old_carry: Any, h: jax.Array) -> Tuple[Any, jax.Array]:
  """One step of a scan under a mask ``m: bool[*B]`` (or ``None``): ``(carry, h)`` with the old carry kept and
  ``h`` zeroed where ``m`` is False (padding steps leave the state as it was and output nothing)."""
  if m is None:
    return new_carry, h
  keep = lambda n, o: jnp.where(expand_to(m, n.ndim), n, o)
  return jax.tree.map(keep, new_carry, old_carry), keep(h, jnp.zeros_like(h))


GPU_UNROLL = 8
"""Steps per loop iteration on a GPU by default (``unroll=None``). XLA:GPU runs a ``lax.scan`` as a loop driven from
the host, a few microseconds per iteration (jax#2491), which dominates an RNN step at the sizes people train.
Measured on an H200 (``benchmarks/gpu.py``, 2026-11-30): the fused LSTM/GRU loop with 8 steps per iteration took
0.52x (LSTM W1 training), 0.71x (W4 training) and 0.55x (W3 inference, one example) the time of 1 step per
iteration, float32 and bfloat16 alike, and was faster than 4 in every row."""


def default_unroll() -> int:
  """Steps per iteration of a time loop when ``unroll=None``: :data:`GPU_UNROLL` on GPU, 1 elsewhere (XLA:CPU and
  the native CPU loop gain nothing from unrolling; TPUs are not measured yet)."""
  return GPU_UNROLL if jax.default_backend() == "gpu" else 1


def scan_unroll(unroll: Union[int, bool, None]) -> Union[int, bool]:
  """``lax.scan``'s ``unroll`` for the run option ``unroll`` (``None``: :func:`default_unroll`)."""
  return default_unroll() if unroll is None else unroll


def default_hoist() -> bool:
  """Whether the input projection runs for all steps before the time loop by default: everywhere but on XLA:CPU,
  where the loop that multiplies ``x_t`` itself is faster (see :func:`jaxrnn.unroll`'s ``hoist``)."""
  return jax.default_backend() != "cpu"


def reverse_valid(xs: jax.Array, seq_lengths: Optional[jax.Array]) -> jax.Array:
  """Reverses the valid part ``[0, L)`` of each sequence in ``xs: [T, *B, ...]``; padding stays at the end.

  With ``seq_lengths=None`` this is ``jnp.flip(xs, 0)``. The map is its own inverse.

  >>> import jax.numpy as jnp
  >>> xs = jnp.arange(8.).reshape(2, 4).T          # [T=4, B=2]
  >>> reverse_valid(xs, jnp.array([2, 4])).T.tolist()
  [[1.0, 0.0, 2.0, 3.0], [7.0, 6.0, 5.0, 4.0]]
  """
  if seq_lengths is None:
    return jnp.flip(xs, 0)
  lengths = _checks.integer_array("seq_lengths", seq_lengths)
  num_steps = xs.shape[0]
  t = jnp.arange(num_steps, dtype=jnp.int32).reshape((num_steps,) + (1,) * lengths.ndim)
  idx = jnp.where(t < lengths[None], lengths[None] - 1 - t, t)  # [T, *B]
  idx = expand_to(idx, xs.ndim)
  idx = jnp.broadcast_to(idx, idx.shape[:1 + lengths.ndim] + xs.shape[1 + lengths.ndim:])
  return jnp.take_along_axis(xs, idx, axis=0)


def reverse_segments(xs: jax.Array, starts: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
  """Reverses each segment of each sequence of ``xs: [T, *B, ...]`` in place; padding stays where it is.

  A segment runs from a step flagged in ``starts: bool[T, *B]`` (or from ``t = 0``) to the step before the next
  flag (or to the sequence's last valid step, the end of ``mask``'s prefix; flags at padded steps are ignored). The
  segments keep their order, so a sequence whose segments are packed documents reads each document backwards
  (what the backward direction of :func:`jaxrnn.bidirectional` runs on a packed row). The map is its own inverse;
  without flags it is :func:`reverse_valid`.

  >>> import jax.numpy as jnp
  >>> starts = jnp.array([0, 0, 1, 0, 0, 1, 0], bool)
  >>> reverse_segments(jnp.arange(7.), starts).tolist()
  [1.0, 0.0, 4.0, 3.0, 2.0, 6.0, 5.0]
  >>> reverse_segments(jnp.arange(7.), starts, jnp.arange(7) < 6).tolist()   # the last step is padding
  [1.0, 0.0, 4.0, 3.0, 2.0, 5.0, 6.0]
  """
  num_steps = xs.shape[0]
  if starts.dtype != jnp.bool_ or starts.ndim < 1 or tuple(starts.shape) != tuple(xs.shape[:starts.ndim]):
    raise ValueError(f"starts must be bool [T, *B], a prefix of xs's shape {xs.shape}, got {starts.dtype} "
                     f"{starts.shape}")
  valid = jnp.ones(starts.shape, bool) if mask is None else jnp.broadcast_to(mask, starts.shape)
  t = jnp.broadcast_to(jnp.arange(num_steps, dtype=jnp.int32).reshape((num_steps,) + (1,) * (starts.ndim - 1)),
                       starts.shape)
  starts = starts & valid
  first = jax.lax.cummax(jnp.where(starts, t, 0), axis=0)  # the first step of t's segment
  next_start = jax.lax.cummin(jnp.where(starts, t, num_steps), axis=0, reverse=True)  # the first flag at or after t
  after = jnp.concatenate([next_start[1:], jnp.full_like(next_start[:1], num_steps)], axis=0)  # ... after t
  last = jnp.minimum(after, jnp.sum(valid, axis=0, dtype=jnp.int32)[None]) - 1  # the last step of t's segment
  idx = expand_to(jnp.where(valid, first + last - t, t), xs.ndim)
  idx = jnp.broadcast_to(idx, idx.shape[:starts.ndim] + xs.shape[starts.ndim:])
  return jnp.take_along_axis(xs, idx, axis=0)
