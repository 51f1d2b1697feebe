"""Truncated backpropagation through time (Williams & Peng 1990; Sutskever 2013, sec. 2.8).

A long sequence is cut into chunks of ``k`` steps. The carry flows forwards across chunks, but the gradient
does not: it is stopped at every chunk boundary, so backprop covers at most ``k`` steps and memory is that of
a ``k``-step unroll per update (:func:`train_on_stream`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Tuple

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.types import Array, Carry, Cell, Params
from jaxrnn.unroll import _program, unroll


def _num_chunks(xs: Any, chunk_size: int, time_axis: int) -> int:
  """``T // k``; raises unless ``k`` divides ``T``."""
  num_steps = jax.tree.leaves(xs)[0].shape[time_axis]
  if num_steps % chunk_size:
    raise ValueError(f"chunk_size must divide the number of steps, got chunk_size={chunk_size} and T={num_steps}")
  return num_steps // chunk_size


def _chunks(xs: Any, chunk_size: int, time_axis: int) -> Tuple[Any, int]:
  """``[T, ...]`` leaves (time moved first) -> ``[T // k, k, ...]``; raises unless ``k`` divides ``T``."""
  n = _num_chunks(xs, chunk_size, time_axis)
  return jax.tree.map(lambda a: jnp.moveaxis(a, time_axis, 0).reshape((n, chunk_size) + a.shape[:time_axis]
                                                                       + a.shape[time_axis + 1:]), xs), n


def truncated_unroll(cell: Cell, params: Params, carry: Carry, xs: Array, chunk_size: int, *,
                     time_major: bool = False, **unroll_kwargs: Any) -> Tuple[Carry, Array]:
  """:func:`jaxrnn.unroll` in chunks of ``chunk_size`` steps with the gradient stopped between chunks.

  The values equal those of ``unroll`` (the carry flows across chunks); the gradient of a loss on ``hs`` is the
  truncated-BPTT gradient: step ``t``'s output backpropagates only to the start of its chunk. The initial
  carry still gets gradients from the first chunk (so a learned initial carry trains). With
  ``chunk_size == T`` this is ``unroll``, gradients included.

  Args:
    cell, params, carry: as for :func:`jaxrnn.unroll`.
    xs: ``[*B, T, *F]`` (or ``[T, *B, *F]`` with ``time_major=True``); ``chunk_size`` must divide ``T``.
    chunk_size: ``k``, the truncation length.
    time_major: the layout of ``xs`` and ``hs``.
    **unroll_kwargs: passed on to ``unroll`` for each chunk (``unroll``, ``mode``, ``remat``, ...; ``key``, with
      ``carry=None``, to the first chunk, whose default carry it draws; not ``seq_lengths`` or ``reverse``, which
      do not make sense across chunks).

  Returns:
    ``(final_carry, hs)`` as ``unroll`` returns them.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.gru(4)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> xs = jnp.ones((2, 6, 3))
    >>> c0 = cell.initial_carry(params, (2,))
    >>> _, hs = jaxrnn.truncated_unroll(cell, params, c0, xs, chunk_size=2)
    >>> bool(jnp.allclose(hs, jaxrnn.unroll(cell, params, c0, xs)[1]))
    True
  """
  chunk_size = _checks.positive_int("chunk_size", chunk_size)
  for bad in ("seq_lengths", "reverse", "return_all_carries"):
    if bad in unroll_kwargs:
      raise ValueError(f"truncated_unroll does not take {bad}")
  xs = _checks.floating("xs", xs)
  time_axis = 0 if time_major else xs.ndim - cell.input_ndim - 1
  if time_axis < 0:
    raise ValueError(f"xs must have a time axis and {cell.input_ndim} feature axis(es), got shape {xs.shape}")
  _num_chunks(xs, chunk_size, time_axis)  # raises before anything is traced
  key = unroll_kwargs.pop("key", None)
  # One jitted program per cell, settings and shapes (as unroll's own): outside jit the scan over chunks compiled its
  # body on every call.
  program = _program(_truncated_unroll, cell, chunk_size, time_axis, time_major, tuple(sorted(unroll_kwargs.items())))
  return program(params, carry, xs, key)


def _truncated_unroll(cell: Cell, chunk_size: int, time_axis: int, time_major: bool, settings: Tuple[Any, ...],
                      params: Params, carry: Carry, xs: Array, key: Any) -> Tuple[Carry, Array]:
  """The body of :func:`truncated_unroll` after its checks; ``settings``: the ``unroll`` keywords as sorted items."""
  chunks, n = _chunks(xs, chunk_size, time_axis)  # [n, k, *B, *F]

  def run(c, x, **key):
    return unroll(cell, params, c, x, time_major=True, **dict(settings), **key)

  # key= is the default carry's (carry=None), so the first chunk's: the later ones continue its carry.
  carry, first = run(carry, chunks[0], **({} if key is None else {"key": key}))
  hs = first[None]
  if n > 1:
    def body(c, x):
      return run(jax.lax.stop_gradient(c), x)

    carry, rest = jax.lax.scan(body, carry, chunks[1:])
    hs = jnp.concatenate([hs, rest])
  hs = hs.reshape((n * chunk_size,) + hs.shape[2:])  # [T, *B, H]
  if not time_major:
    hs = jnp.moveaxis(hs, 0, time_axis)
  return carry, hs


def train_on_stream(
    cell: Cell,
    loss_fn: Callable[[Array, Any], Array],
    optimizer: Any,
    params: Params,
    opt_state: Any,
    carry: Carry,
    xs: Array,
    targets: Any,
    chunk_size: int,
    *,
    time_major: bool = False,
) -> Tuple[Params, Any, Carry, Array]:
  """Trains over a long stream with truncated BPTT: one optimizer update per chunk of ``chunk_size`` steps.

  For each chunk in order: ``loss = loss_fn(hs_chunk, targets_chunk)`` from the carry left by the previous
  chunk (held constant: no gradient flows into earlier chunks), one ``optax`` update of ``params``, and the
  carry moves on. The loop over chunks is a ``lax.scan``, so the whole call can be jitted; outside ``jit`` it is
  compiled once per cell, ``loss_fn``, ``optimizer`` and shapes (they are the program's key: pass the same
  function and optimizer objects to reuse it).

  Args:
    cell: the cell.
    loss_fn: ``loss_fn(hs, targets) -> scalar`` on one chunk, ``hs: [*B, k, H]`` (or ``[k, *B, H]`` when
      ``time_major``) and the matching chunk of ``targets``.
    optimizer: an ``optax.GradientTransformation`` (anything with ``update(grads, state, params) -> (updates,
      state)``; jaxrnn itself does not import optax).
    params, opt_state: the parameters and ``optimizer.init(params)``.
    carry: the carry at the start of the stream.
    xs: the stream ``[*B, T, *F]`` (or time-major); ``chunk_size`` must divide ``T``.
    targets: a pytree of arrays with the time axis where ``xs`` has it (``[*B, T, ...]``).
    chunk_size: ``k``.
    time_major: the layout of ``xs``, ``targets`` and of the ``hs`` given to ``loss_fn``.

  Returns:
    ``(params, opt_state, carry, losses)`` with ``losses: [T // k]``, the loss of each chunk before its update.

  Example:

    >>> import jax, jax.numpy as jnp, optax, jaxrnn
    >>> cell = jaxrnn.gru(4)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> opt = optax.adam(1e-2)
    >>> xs, ys = jnp.ones((2, 8, 3)), jnp.zeros((2, 8, 4))
    >>> loss = lambda hs, ys: jnp.mean((hs - ys) ** 2)
    >>> params, _, carry, losses = jaxrnn.train_on_stream(
    ...     cell, loss, opt, params, opt.init(params), cell.initial_carry(params, (2,)), xs, ys, chunk_size=4)
    >>> losses.shape
    (2,)
  """
  chunk_size = _checks.positive_int("chunk_size", chunk_size)
  xs = _checks.floating("xs", xs)
  time_axis = 0 if time_major else xs.ndim - cell.input_ndim - 1
  n = _num_chunks(xs, chunk_size, time_axis)
  if _num_chunks(targets, chunk_size, time_axis) != n:
    raise ValueError(f"targets must have the {xs.shape[time_axis]} steps of xs on the time axis")
  static = (loss_fn, optimizer, chunk_size, time_axis, time_major)
  try:
    hash(static)
  except TypeError:  # an optimizer object that cannot be a cache key: a program for this call alone
    program = jax.jit(functools.partial(_train_on_stream, cell, *static))
  else:  # one jitted program per cell, loss, optimizer and shapes, as unroll's own
    program = _program(_train_on_stream, cell, *static)
  return program(params, opt_state, carry, xs, targets)


def _train_on_stream(cell: Cell, loss_fn: Callable[[Array, Any], Array], optimizer: Any, chunk_size: int,
                     time_axis: int, time_major: bool, params: Params, opt_state: Any, carry: Carry, xs: Array,
                     targets: Any) -> Tuple[Params, Any, Carry, Array]:
  """The body of :func:`train_on_stream` after its checks."""
  x_chunks, _ = _chunks(xs, chunk_size, time_axis)
  y_chunks, _ = _chunks(targets, chunk_size, time_axis)

  def to_layout(a):
    return a if time_major else jnp.moveaxis(a, 0, time_axis)

  def chunk_loss(p, c, x, y):
    c, hs = unroll(cell, p, c, x, time_major=True)
    return loss_fn(to_layout(hs), jax.tree.map(to_layout, y)), c

  def body(state, inp):
    p, o, c = state
    x, y = inp
    (loss, c), grads = jax.value_and_grad(chunk_loss, has_aux=True)(p, jax.lax.stop_gradient(c), x, y)
    updates, o = optimizer.update(grads, o, p)
    return (_apply_updates(p, updates), o, c), loss

  (params, opt_state, carry), losses = jax.lax.scan(body, (params, opt_state, carry), (x_chunks, y_chunks))
  return params, opt_state, carry, losses


def _apply_updates(params: Params, updates: Any) -> Params:
  """``params + updates`` leaf by leaf, in each param's dtype (what ``optax.apply_updates`` computes)."""
  return jax.tree.map(lambda p, u: jnp.asarray(p + u).astype(jnp.asarray(p).dtype), params, updates)
