"""A trainable initial carry (as Haiku's ``initial_state`` with ``trainable=True``)."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.combinators import _util
from jaxrnn.combinators import reset
from jaxrnn.types import ALL_OPTIONS, Cell, InputTransformFn, ResetSequenceFn, SequencePath, StepFn
from jaxrnn.unroll import asked_options


class LearnedInitParams(NamedTuple):
  """Parameters of :func:`learned_initial_carry`."""

  cell: Any  # the wrapped cell's params
  carry: Any  # the initial carry of one example (the wrapped cell's carry type, leaves without batch axes)


def learned_initial_carry(cell: Cell, name: Optional[str] = None) -> Cell:
  """The wrapped cell with a trainable initial carry ``c_0``, shared by all examples.

  ``init`` stores the cell's own initial carry for one example (zeros for the built-in cells) in
  ``params.carry``; ``initial_carry(params, batch_shape)`` broadcasts it to ``[*B, ...]``. Since the carry is
  computed from ``params``, ``jax.grad`` of a loss that starts from ``cell.initial_carry(params, ...)`` trains
  it, and :func:`jaxrnn.reset_on` resets to it.

  Args:
    cell: the wrapped cell.
    name: the cell's name.

  Returns:
    A :class:`jaxrnn.Cell` with ``LearnedInitParams(cell, carry)``; step, input transform and sequence path are
    the wrapped cell's (resets inside the path too, so ``reset_on(learned_initial_carry(min_gru(H)))`` stays one
    parallel scan that restarts from the learned carry).

  Example:

    >>> import jax, jaxrnn
    >>> cell = jaxrnn.learned_initial_carry(jaxrnn.lstm(4))
    >>> params = cell.init(jax.random.key(0), 3)
    >>> params.carry.c.shape, cell.initial_carry(params, (2,)).c.shape
    ((4,), (2, 4))
  """
  _checks.cell("cell", cell)
  if cell.map_ndim:
    raise ValueError(f"learned_initial_carry needs a cell whose carry does not cover its input's map "
                     f"(map_ndim=0): the learned carry has one fixed shape; {cell.name} has map_ndim={cell.map_ndim}")
  name = name or f"learned_initial_carry({cell.name})"

  def init(key, input_size):
    p = cell.init(key, input_size)
    return LearnedInitParams(cell=p, carry=cell.initial_carry(p, ()))

  def initial_carry(params, batch_shape=(), dtype=None, *, key=None):
    _checks.initial_carry_params(params)
    batch_shape = _checks.batch_shape("batch_shape", batch_shape)
    dt = _checks.dtype("dtype", dtype)
    _checks.optional_key("key", key)  # the learned carry has no randomness
    return jax.tree.map(lambda a: jnp.broadcast_to(a.astype(dt or a.dtype), batch_shape + a.shape),
                        params.carry)

  def step(params, carry, x):
    return cell.step(params.cell, carry, x)

  transform, transformed = cell.input_transform, cell.step_transformed
  input_transform: Optional[InputTransformFn] = None
  step_transformed: Optional[StepFn] = None
  if transform is not None and transformed is not None:
    input_transform = lambda params, xs: transform(params.cell, xs)
    step_transformed = lambda params, carry, u: transformed(params.cell, carry, u)

  def sequence(params, carry, xs, mask, options):
    return _util.unroll_inner(cell, params.cell, carry, xs, mask, options)

  inner = cell.sequence
  auto = None if inner is None else inner.auto  # it runs the inner path: the same rule holds
  resets: Optional[ResetSequenceFn] = None
  if inner is not None and inner.resets is not None:
    inner_resets, inner_honours = inner.resets, inner.honours

    def resets_inside(params, carry, xs, should_reset, reset_carry, mask, options):
      if asked_options(options) <= inner_honours:  # the inner parallel path, resets inside it
        return inner_resets(params.cell, carry, xs, should_reset, reset_carry, mask, options)
      return reset.unroll_with_resets(cell, params.cell, carry, xs, should_reset, reset_carry, mask, options)

    resets = resets_inside

  return Cell(init=init, initial_carry=initial_carry, step=step, input_transform=input_transform,
              step_transformed=step_transformed, sequence=SequencePath(sequence, ALL_OPTIONS, auto=auto, resets=resets),
              input_ndim=cell.input_ndim, name=name)
