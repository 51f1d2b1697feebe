"""Bidirectional RNNs (Schuster & Paliwal 1997) as a cell with a whole-sequence path."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import sequences
from jaxrnn.combinators import _util
from jaxrnn.combinators import reset
from jaxrnn.types import ALL_OPTIONS, Cell, CellConfig, ResetSequenceFn, SequencePath


class BidirectionalParams(NamedTuple):
  """Parameters of :func:`bidirectional`."""

  fwd: Any  # the forward cell's params
  bwd: Any  # the backward cell's params


class BidirectionalCarry(NamedTuple):
  """Carry of :func:`bidirectional`."""

  fwd: Any  # the forward cell's carry, [*B, ...]; after a sequence: at its last valid step
  bwd: Any  # the backward cell's carry, [*B, ...]; after a sequence: after reading x_0 (its last step)


MERGES = {
    "concat": lambda f, b: jnp.concatenate([f, b], axis=-1),
    "sum": lambda f, b: f + b,
    "mul": lambda f, b: f * b,
    "mean": lambda f, b: (f + b) / 2,
    None: lambda f, b: jnp.stack([f, b], axis=-2),
}


def bidirectional(fwd: Cell, bwd: Cell, merge: Union[str, None, Callable] = "concat",
                  name: Optional[str] = None) -> Cell:
  r"""Runs ``fwd`` forwards and ``bwd`` backwards over each sequence and merges their outputs per step.

  .. math::

     \overrightarrow{h}_t = \mathrm{fwd}(\overrightarrow{h}_{t-1}, x_t), \quad
     \overleftarrow{h}_t = \mathrm{bwd}(\overleftarrow{h}_{t+1}, x_t), \quad
     y_t = \mathrm{merge}(\overrightarrow{h}_t, \overleftarrow{h}_t)

  (Schuster & Paliwal 1997; Graves & Schmidhuber 2005). Under ``seq_lengths`` the backward direction starts at
  each sequence's own last valid step ``L - 1`` (padding stays at the end), and padded outputs are zeros.

  A bidirectional layer has no single step: ``y_t`` depends on the future. So this cell's ``step`` raises, and
  the cell brings a whole-sequence path (``cell.sequence``), which :func:`jaxrnn.unroll` uses (``mode="auto"``
  or ``"sequence"``; not ``mode="step"`` or ``return_all_carries=True``). It nests: a :func:`jaxrnn.stack` with
  bidirectional layers gets a sequence path too.

  Packed rows: where both cells' paths declare resets (:attr:`jaxrnn.SequencePath.resets`), so does this one, and
  :func:`jaxrnn.reset_on` of it equals running each segment (document) through the bidirectional cell separately:
  the forward cell restarts at each flagged step, and the backward cell reads each segment backwards, from the
  segment's last step (the step before the next flag, or the sequence's last valid step) to its flagged first
  step, starting from ``reset_carry.bwd`` (``carry.bwd`` for the first segment, unless ``t = 0`` is flagged).

  Args:
    fwd: the forward cell.
    bwd: the backward cell (another cell, or ``fwd`` again for the same architecture; params are separate).
    merge: ``"concat"`` (``[*B, H_f + H_b]``), ``"sum"``, ``"mul"``, ``"mean"`` (``[*B, H]``), ``None``
      (stacked, ``[*B, 2, H]``: index 0 forward, 1 backward) or a callable ``merge(h_fwd, h_bwd)`` on
      ``[T, *B, H]`` arrays.
    name: the cell's name (default ``"bidirectional(lstm,gru)"``).

  Returns:
    A :class:`jaxrnn.Cell` with ``BidirectionalParams(fwd, bwd)`` and ``BidirectionalCarry(fwd, bwd)``;
    ``initial_carry(params, batch_shape=(), dtype=None, key=None)``.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.bidirectional(jaxrnn.lstm(4), jaxrnn.gru(3))
    >>> params = cell.init(jax.random.key(0), 2)
    >>> carry = cell.initial_carry(params, (2,))
    >>> final, hs = jaxrnn.unroll(cell, params, carry, jnp.ones((2, 5, 2)), seq_lengths=jnp.array([5, 3]))
    >>> hs.shape, bool((hs[1, 3:] == 0).all())
    ((2, 5, 7), True)
  """
  for arg, c in (("fwd", fwd), ("bwd", bwd)):
    _checks.cell(arg, c)
  if fwd.input_ndim != bwd.input_ndim:
    raise ValueError(f"fwd and bwd must read the same input rank, got input_ndim {fwd.input_ndim} and "
                     f"{bwd.input_ndim}")
  if fwd.map_ndim != bwd.map_ndim:
    raise ValueError(f"fwd and bwd must have carries over the same map axes, got map_ndim {fwd.map_ndim} and "
                     f"{bwd.map_ndim}")
  merge_fn = merge if callable(merge) else None
  if merge_fn is None:
    if merge not in MERGES:
      raise ValueError(f"merge must be a callable or one of {[m for m in MERGES]}, got {merge!r}")
    merge_fn = MERGES[merge]
  if name is None:
    name = f"bidirectional({fwd.name},{bwd.name})"

  def init(key, input_size):
    _checks.key("key", key)
    k_f, k_b = jax.random.split(key)
    return BidirectionalParams(fwd=fwd.init(k_f, input_size), bwd=bwd.init(k_b, input_size))

  def initial_carry(params, batch_shape=(), dtype=None, *, key=None):
    _checks.initial_carry_params(params)
    k_f, k_b = _util.split_optional(key, 2)
    return BidirectionalCarry(fwd=fwd.initial_carry(params.fwd, batch_shape, dtype, key=k_f),
                              bwd=bwd.initial_carry(params.bwd, batch_shape, dtype, key=k_b))

  def step(params, carry, x):
    del params, carry, x
    raise TypeError(
        f"{name} has no single step (its output at t depends on later inputs); run it over a whole sequence "
        "with jaxrnn.unroll(cell, params, carry, xs, seq_lengths=...) (mode='auto' or 'sequence')")

  def merged(c_f, h_f, c_b, h_b, mask):
    dt = jnp.result_type(h_f.dtype, h_b.dtype)
    hs = merge_fn(h_f.astype(dt), h_b.astype(dt))
    return BidirectionalCarry(fwd=c_f, bwd=c_b), _util.zero_padded(hs, mask)

  def sequence(params, carry, xs, mask, options):
    _checks.carry_type("carry", carry, BidirectionalCarry)
    c_f, h_f = _util.unroll_inner(fwd, params.fwd, carry.fwd, xs, mask, options)
    c_b, h_b = _util.unroll_inner(bwd, params.bwd, carry.bwd, xs, mask, options, reverse=True)
    return merged(c_f, h_f, c_b, h_b, mask)

  resets: Optional[ResetSequenceFn] = None
  if reset.declared_resets(fwd, bwd):
    def sequence_resets(params, carry, xs, should_reset, reset_carry, mask, options):
      # A packed row is its segments side by side: the forward cell restarts at each flag; the backward cell
      # reads each segment backwards, from its last step to its flagged first one. Reversing every segment in
      # place keeps their order, so the backward run starts from carry.bwd on the first segment and restarts
      # from reset_carry.bwd at the same flags (the segments' first steps, which now hold their last inputs).
      _checks.carry_type("carry", carry, BidirectionalCarry)
      _checks.carry_type("reset_carry", reset_carry, BidirectionalCarry)
      starts = reset.valid_flags(should_reset, mask, name)
      c_f, h_f = reset.unroll_with_resets(fwd, params.fwd, carry.fwd, xs, starts, reset_carry.fwd, mask, options)
      backwards = lambda a: sequences.reverse_segments(a, starts, mask)
      c_b, h_b = reset.unroll_with_resets(bwd, params.bwd, carry.bwd, jax.tree.map(backwards, xs), starts,
                                          reset_carry.bwd, mask, options)
      return merged(c_f, h_f, c_b, backwards(h_b), mask)

    resets = sequence_resets

  config = CellConfig("bidirectional", (("merge", "custom" if callable(merge) else merge),), (fwd, bwd))
  return Cell(init=init, initial_carry=initial_carry, step=step,
              sequence=SequencePath(sequence, ALL_OPTIONS, resets=resets),
              input_ndim=fwd.input_ndim, name=name, config=config, map_ndim=fwd.map_ndim)
