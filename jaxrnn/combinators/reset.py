"""Per-step carry resets at episode boundaries, for reinforcement learning (as Haiku's ``ResetCore``)."""

from __future__ import annotations

import warnings
from typing import Any, Optional, Tuple

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import sequences
from jaxrnn.combinators import _util
from jaxrnn.types import (Cell, CarryJacobianDiagonalFn, InputTransformFn, RunOptions, SequencePath, StepFn,
                          carry_batch_shape)


def with_reset_flags(xs: jax.Array, should_reset: jax.Array) -> Tuple[jax.Array, jax.Array]:
  """Deprecated: :func:`reset_on` takes ``(xs, should_reset)`` directly; this checks the shapes and returns that.

  It used to pack the flag as an extra float column (``[..., F + 1]``); that form is gone, and
  ``reset_on(cell).init(key, F)`` now takes the cell's own input size ``F``.
  """
  warnings.warn("jaxrnn.with_reset_flags is deprecated: reset_on takes the inputs (xs, should_reset) as they are; "
                "note that reset_on(cell).init(key, F) now takes the input size F without the flag",
                DeprecationWarning, stacklevel=2)
  xs = _checks.floating("xs", xs)
  should_reset = jnp.asarray(should_reset)
  if should_reset.shape != xs.shape[:-1]:
    raise ValueError(f"should_reset must have the shape of xs without its feature axis {xs.shape[:-1]}, got "
                     f"{should_reset.shape}")
  return xs, should_reset


def reset_on(cell: Cell, name: Optional[str] = None) -> Cell:
  """Resets the carry to the cell's initial carry, per example, at the steps where a flag is set.

  The input is the pair ``(x, should_reset)``: ``x: [*B, *F]`` the cell's input and ``should_reset: [*B]`` (bool,
  or a number: nonzero means True) saying "this step starts a new episode" (Haiku's ``ResetCore`` takes the
  same pair). :func:`jaxrnn.unroll` takes ``xs = (xs [*B, T, *F], should_reset [*B, T])`` (the cell's
  ``input_ndim`` is ``(cell.input_ndim, 0)``), with ``seq_lengths``, ``reverse``, ``time_major``, ``vmap`` and
  the run options as for any cell. At a flagged step the carry is replaced by ``cell.initial_carry(params, B)``
  (learned or not, see :func:`jaxrnn.learned_initial_carry`) *before* the step reads ``x``, so one unroll over a
  stream of concatenated episodes equals running each episode separately from the initial carry. ``init(key, F)``
  is the wrapped cell's. The cell's input transform is kept (hoisted with the flags riding along).

  Parallel paths are kept: where the cell's sequence path declares resets (``cell.sequence.resets``, a
  :class:`jaxrnn.ResetSequenceFn`: ``min_gru``, ``min_lstm``, ``lru``, ``rg_lru``, ``mlstm``, and
  ``learned_initial_carry``, ``stack``, ``bidirectional``, ``with_projection``, ``with_input_transform``,
  ``residual`` and ``dropout`` of those), the wrapper's sequence path runs it with the flags and the initial carry,
  so packed sequences stay one parallel scan (``a_t := 0`` at a flagged step of a linear recurrence) and
  :func:`jaxrnn.unroll` uses it in ``mode="auto"`` as for the cell itself (same run options honoured). Other
  cells (and ``reset_on`` of ``reset_on``) run the scan of the resetting step. The parallel-in-time solver
  (``newton=``) solves the resetting step: its Jacobian is zero at a flagged step; the wrapper declares
  ``carry_jacobian_diagonal`` where the cell does, and its flags as ``carry_resets`` (so every Jacobian choice,
  Picard's included, has ``A_t = 0`` there).

  A cell whose ``initial_carry`` draws from its key (dropout wrappers) cannot be reset (the fresh carry is built
  without one): wrap randomness outside, ``dropout(reset_on(cell))``, without input dropout.

  Args:
    cell: the wrapped cell.
    name: the cell's name.

  Returns:
    A :class:`jaxrnn.Cell` with the wrapped cell's params and carry, reading ``(x, should_reset)``.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.reset_on(jaxrnn.gru(4))
    >>> params = cell.init(jax.random.key(0), 3)
    >>> xs = (jnp.ones((6, 3)), jnp.array([0, 0, 0, 1, 0, 0], bool))    # (inputs [T, F], flags [T])
    >>> _, hs = jaxrnn.unroll(cell, params, None, xs)
    >>> bool(jnp.allclose(hs[3:], hs[:3]))                   # the second episode starts afresh
    True
  """
  _checks.cell("cell", cell)
  name = name or f"reset_on({cell.name})"

  def split(inputs, what="x"):
    return _checks.reset_pair(what, inputs, name)

  def fresh_carry(params, carry, batch_shape, feature_shape):
    """``cell.initial_carry`` for ``batch_shape`` (and the map in ``feature_shape``, an input's shape after its batch
    axes, for a carry over its map) in the carry's dtypes (checked against ``carry``)."""
    leaves = jax.tree.leaves(carry)
    for leaf in leaves:
      if tuple(leaf.shape[:len(batch_shape)]) != tuple(batch_shape):
        raise ValueError(f"should_reset of {name} must have the batch shape of the carry, got should_reset of "
                         f"shape {tuple(batch_shape)} and a carry leaf of shape {leaf.shape}")
    floating = [a.dtype for a in leaves if jnp.issubdtype(a.dtype, jnp.floating)]
    batch = carry_batch_shape(cell, tuple(batch_shape), feature_shape)
    fresh = cell.initial_carry(params, batch, floating[0] if floating else None)
    if jax.tree.structure(fresh) != jax.tree.structure(carry):
      raise ValueError(f"{name}: the carry given does not have the structure of cell.initial_carry(params, "
                       f"{batch}); got {jax.tree.structure(carry)}, want {jax.tree.structure(fresh)}")
    return jax.tree.map(lambda f, c: f.astype(c.dtype), fresh, carry)

  def reset(params, carry, flag, x):
    fresh = fresh_carry(params, carry, flag.shape, jax.tree.leaves(x)[0].shape[flag.ndim:])
    return jax.tree.map(lambda f, c: jnp.where(sequences.expand_to(flag, c.ndim), f, c), fresh, carry)

  def step(params, carry, inputs):
    x, flag = split(inputs)
    return cell.step(params, reset(params, carry, flag, x), x)

  transform, transformed = cell.input_transform, cell.step_transformed
  input_transform: Optional[InputTransformFn] = None
  step_transformed: Optional[StepFn] = None
  if transform is not None and transformed is not None:
    def input_transform_flags(params, inputs):
      xs, flag = split(inputs, "xs")
      return transform(params, xs), flag

    def step_transformed_flags(params, carry, inputs):
      u, flag = split(inputs, "input_transform(x)")
      return transformed(params, reset(params, carry, flag, u), u)

    input_transform, step_transformed = input_transform_flags, step_transformed_flags

  sequence = None
  if cell.sequence is not None and cell.sequence.resets is not None:
    inner_resets = cell.sequence.resets

    def run(params, carry, inputs, mask, options):
      xs, flags = split(inputs, "xs")
      if flags.ndim < 1:
        raise ValueError(f"should_reset of {name} must have shape [T, *B], got {flags.shape}")
      fresh = fresh_carry(params, carry, flags.shape[1:], jax.tree.leaves(xs)[0].shape[flags.ndim:])
      return inner_resets(params, carry, xs, flags, fresh, mask, options)

    sequence = SequencePath(run, cell.sequence.honours, auto=cell.sequence.auto)

  carry_jacobian_diagonal: Optional[CarryJacobianDiagonalFn] = None
  inner_diagonal = cell.carry_jacobian_diagonal
  if inner_diagonal is not None:
    def diagonal_with_resets(params, carry, inputs):
      x, flag = split(inputs)
      diag = inner_diagonal(params, reset(params, carry, flag, x), x)
      return jax.tree.map(lambda d: jnp.where(sequences.expand_to(flag, d.ndim), jnp.zeros_like(d), d), diag)

    carry_jacobian_diagonal = diagonal_with_resets

  inner_restarts = cell.carry_resets

  def carry_resets(params, inputs):
    x, flag = split(inputs)
    return flag if inner_restarts is None else flag | inner_restarts(params, x)

  return Cell(init=cell.init, initial_carry=cell.initial_carry, step=step, input_transform=input_transform,
              step_transformed=step_transformed, sequence=sequence, input_ndim=(cell.input_ndim, 0), name=name,
              carry_jacobian_diagonal=carry_jacobian_diagonal, map_ndim=cell.map_ndim, carry_resets=carry_resets)


def unroll_with_resets(cell: Cell, params: Any, carry: Any, xs: Any, should_reset: jax.Array, reset_carry: Any,
                       mask: Optional[jax.Array], options: RunOptions) -> Tuple[Any, jax.Array]:
  """:class:`jaxrnn.ResetSequenceFn` of any cell, run as :func:`jaxrnn.unroll` runs ``reset_on(cell)`` in
  ``mode="auto"``: the cell's path with resets inside it (``cell.sequence.resets``) where the cell declares one, it
  honours the options set and its rule takes it, else the scan of the resetting step. What a combinator's resets run
  on its inner cells (and ``learned_initial_carry``'s when its inner path cannot honour an option).

  Args:
    cell: the cell; ``params``, ``carry``, ``xs`` (time-major ``[T, *B, *F]``), ``mask`` and ``options`` as
      :class:`jaxrnn.SequenceFn`'s.
    should_reset: ``[T, *B]`` flags (bool, or numbers: nonzero means True).
    reset_carry: the carry entering every flagged step, leaves ``[*B, ...]``.

  Returns:
    ``(carry, hs)`` as :class:`jaxrnn.SequenceFn`.
  """
  def initial_carry(params, batch_shape=(), dtype=None, *, key=None):
    del params, batch_shape, dtype, key  # reset_on casts it to the carry's dtypes and checks its structure
    return reset_carry

  to_reset_carry = cell._replace(initial_carry=initial_carry)
  return _util.unroll_inner(reset_on(to_reset_carry), params, carry, (xs, should_reset), mask, options)


def declared_resets(*cells: Cell) -> bool:
  """Whether every one of ``cells`` has a sequence path that declares resets (:attr:`jaxrnn.SequencePath.resets`):
  a combinator that runs them declares its own resets only then."""
  return all(c.sequence is not None and c.sequence.resets is not None for c in cells)


def valid_flags(should_reset: Any, mask: Optional[jax.Array], owner: str) -> jax.Array:
  """``should_reset [T, *B]`` as bool (a number: nonzero means True), False at masked steps (where flags are
  ignored)."""
  _, flags = _checks.reset_pair("xs", (None, should_reset), owner)
  if flags.ndim < 1:
    raise ValueError(f"should_reset of {owner} must have shape [T, *B], got {flags.shape}")
  if mask is None:
    return flags
  if mask.shape != flags.shape:
    raise ValueError(f"should_reset of {owner} must have the mask's shape [T, *B] {mask.shape}, got {flags.shape}")
  return flags & mask
