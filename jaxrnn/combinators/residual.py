"""Residual connections around a cell (He et al. 2016; for stacked RNNs, Wu et al. 2016 "GNMT")."""

from __future__ import annotations

from typing import Optional

import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.combinators import _util
from jaxrnn.combinators import reset
from jaxrnn.types import ALL_OPTIONS, Cell, ResetSequenceFn, SequencePath


def residual(cell: Cell, name: Optional[str] = None) -> Cell:
  r"""``y_t = h_t + x_t``: the cell's output plus its input (which must have the output's size).

  Params, carry and ``initial_carry`` are the wrapped cell's. The cell's whole-sequence path, if any, is kept
  (with its resets, where it declares them; padded outputs stay zeros). Put a :func:`jaxrnn.with_input_transform`
  in front of the first layer of a residual stack when the input size differs from the hidden size.

  Args:
    cell: the wrapped cell, whose output ``[*B, H]`` has the input's shape ``[*B, F]`` (``H == F``).
    name: the cell's name (default ``"residual(lstm)"``).

  Returns:
    A :class:`jaxrnn.Cell`.

  Raises:
    ValueError (at ``step``): ``H != F``.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.residual(jaxrnn.gru(3))
    >>> params = cell.init(jax.random.key(0), 3)
    >>> carry, h = cell(params, cell.initial_carry(params), jnp.ones(3))
    >>> bool(jnp.allclose(h - carry.h, 1.0))
    True
  """
  _checks.cell("cell", cell)
  if name is None:
    name = f"residual({cell.name})"

  def add(h, x):
    if h.shape != x.shape:
      raise ValueError(f"{name}: the output of {cell.name} must have the input's shape for a residual "
                       f"connection, got output {h.shape} and x {x.shape}")
    return h + x.astype(h.dtype)

  def step(params, carry, x):
    carry, h = cell.step(params, carry, x)
    return carry, add(h, jnp.asarray(x))

  def sequence(params, carry, xs, mask, options):
    carry, hs = _util.unroll_inner(cell, params, carry, xs, mask, options)
    return carry, _util.zero_padded(add(hs, xs), mask)

  resets: Optional[ResetSequenceFn] = None
  if reset.declared_resets(cell):
    def sequence_resets(params, carry, xs, should_reset, reset_carry, mask, options):
      carry, hs = reset.unroll_with_resets(cell, params, carry, xs, should_reset, reset_carry, mask, options)
      return carry, _util.zero_padded(add(hs, xs), mask)

    resets = sequence_resets

  return Cell(init=cell.init, initial_carry=cell.initial_carry, step=step,
              sequence=SequencePath(sequence, ALL_OPTIONS, resets=resets), input_ndim=cell.input_ndim, name=name,
              map_ndim=cell.map_ndim)
