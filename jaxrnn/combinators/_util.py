"""Helpers shared by the combinators: a wrapper's initial carry, output sizes, per-example keys and masks."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.types import Cell, RunOptions
from jaxrnn.unroll import unroll


def inner_initial_carry(cell: Cell):
  """The ``initial_carry`` of a wrapper whose params are ``(cell=..., ...)`` and whose carry is the inner cell's."""

  def initial_carry(params, batch_shape=(), dtype=None, *, key=None):
    _checks.initial_carry_params(params)
    return cell.initial_carry(params.cell, batch_shape, dtype, key=key)

  return initial_carry


def split_optional(key: Optional[jax.Array], n: int) -> list:
  """``n`` keys from ``key``, or ``n`` times ``None``."""
  if key is None:
    return [None] * n
  return list(jax.random.split(key, n))


def output_shape(cell: Cell, params: Any, input_size: Any) -> tuple:
  """The per-example output feature shape of ``cell`` for a given input size, without computing anything."""

  feat = tuple(input_size) if isinstance(input_size, (tuple, list)) else (input_size,)

  def run(p):
    c = cell.initial_carry(p, ())
    dt = jax.tree.leaves(c)[0].dtype if jax.tree.leaves(c) else jnp.float32
    return unroll(cell, p, c, jnp.zeros((1,) + feat, dt), time_major=True)[1]

  return tuple(jax.eval_shape(run, params).shape[1:])


def as_input_size(shape: Sequence[int]) -> Any:
  """``(F,)`` -> ``F`` (vector cells take an int), other shapes stay tuples."""
  return shape[0] if len(shape) == 1 else tuple(shape)


def example_keys(key: jax.Array, batch_shape: Sequence[int]) -> jax.Array:
  """One raw key per example: ``uint32[*B, K]`` (``K = 2`` for the default threefry keys)."""
  n = math.prod(batch_shape)
  keys = jax.random.split(key, n)
  if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
    keys = jax.random.key_data(keys)
  return keys.reshape(tuple(batch_shape) + keys.shape[1:])


def keep_masks(keys: jax.Array, rate: float, shape: Sequence[int], dtype: Any) -> jax.Array:
  """Inverted-dropout masks ``[*B, *shape]``: ``1/(1-rate)`` with probability ``1-rate``, else 0; per-example keys."""
  batch = keys.shape[:-1]
  flat = keys.reshape((-1, keys.shape[-1]))
  keep = 1.0 - rate
  bits = jax.vmap(lambda k: jax.random.bernoulli(k, keep, tuple(shape)))(flat)
  return (bits.astype(dtype) / jnp.asarray(keep, dtype)).reshape(tuple(batch) + tuple(shape))


def bernoulli(keys: jax.Array, p: float, shape: Sequence[int]) -> jax.Array:
  """``bool[*B, *shape]``, ``True`` with probability ``p``; per-example keys ``[*B, K]``."""
  batch = keys.shape[:-1]
  flat = keys.reshape((-1, keys.shape[-1]))
  bits = jax.vmap(lambda k: jax.random.bernoulli(k, p, tuple(shape)))(flat)
  return bits.reshape(tuple(batch) + tuple(shape))


def split_examples(keys: jax.Array, n: int) -> list:
  """Splits each per-example key into ``n``: a list of ``n`` arrays ``[*B, K]``."""
  flat = keys.reshape((-1, keys.shape[-1]))
  out = jax.vmap(lambda k: jax.random.split(k, n))(flat)  # [N, n, K]
  return [out[:, i].reshape(keys.shape) for i in range(n)]


def unroll_inner(cell: Cell, params: Any, carry: Any, xs: Any, mask: Optional[jax.Array], options: RunOptions,
                 reverse: bool = False) -> Any:
  """An inner cell over the time-major ``xs`` of a combinator's sequence path: :func:`jaxrnn.unroll` with the
  lengths of ``mask`` and the caller's run options, so that every option reaches the inner scans."""
  return unroll(cell, params, carry, xs, seq_lengths=lengths_from_mask(mask), time_major=True, reverse=reverse,
                options=options)


def lengths_from_mask(mask: Optional[jax.Array]) -> Optional[jax.Array]:
  """``int32[*B]`` from a prefix mask ``bool[T, *B]`` (``None`` passes through)."""
  if mask is None:
    return None
  return jnp.sum(mask.astype(jnp.int32), axis=0)


def zero_padded(hs: jax.Array, mask: Optional[jax.Array]) -> jax.Array:
  """Zeros ``hs: [T, *B, ...]`` where ``mask`` is False."""
  if mask is None:
    return hs
  return jnp.where(mask.reshape(mask.shape + (1,) * (hs.ndim - mask.ndim)), hs, jnp.zeros_like(hs))
