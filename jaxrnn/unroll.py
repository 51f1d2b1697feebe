"""The unroll engine: a cell over a whole sequence with ``jax.lax.scan``, and a Python-loop oracle."""

from __future__ import annotations

import math
from typing import Any, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import _checks
from jaxrnn import sequences
from jaxrnn.types import Array, Carry, Cell, Params

MODES = ("auto", "step", "sequence")


def _layout(cell: Cell, xs: Array, time_major: bool) -> Tuple[int, Tuple[int, ...], int]:
  """Returns ``(time_axis, batch_shape, num_steps)`` of ``xs``."""
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a jaxrnn.Cell, got {type(cell).__name__}")
  nf = cell.input_ndim
  if xs.ndim < nf + 1:
    layout = "[T, *B, *F]" if time_major else "[*B, T, *F]"
    raise ValueError(
        f"xs must have shape {layout} with {nf} feature axis(es) and a time axis, i.e. rank >= {nf + 1}, "
        f"got shape {xs.shape}")
  time_axis = 0 if time_major else xs.ndim - nf - 1
  batch_shape = tuple(np.delete(np.array(xs.shape[:xs.ndim - nf], dtype=np.int64), time_axis).tolist())
  return time_axis, batch_shape, xs.shape[time_axis]


def _to_layout(tree: Any, batch_ndim: int, time_major: bool) -> Any:
  """Moves the time axis of time-major leaves ``[T, *B, ...]`` to the caller's layout."""
  if time_major:
    return tree
  return jax.tree.map(lambda a: jnp.moveaxis(a, 0, batch_ndim), tree)


def unroll(
    cell: Cell,
    params: Params,
    carry: Carry,
    xs: Array,
    *,
    seq_lengths: Optional[Array] = None,
    reverse: bool = False,
    time_major: bool = False,
    unroll: int | bool = 1,
    return_all_carries: bool = False,
    mode: str = "auto",
    remat: int | bool = False,
    hoist: Optional[bool] = None,
):
  """Runs ``cell`` over a sequence with ``jax.lax.scan``: ``(final_carry, hs)``.

  Compile time does not grow with ``T``: the step is traced once. When the cell has a time-parallel part
  (``cell.input_transform``) it can be applied to all steps at once, outside the loop (``hoist``).

  Args:
    cell: a :class:`jaxrnn.Cell`.
    params: the cell's parameters.
    carry: the initial carry, leaves ``[*B, ...]`` (``cell.initial_carry(params, batch_shape)``).
    xs: inputs ``[*B, T, *F]`` (``time_major=False``, the default) or ``[T, *B, *F]`` (``time_major=True``); ``B``
      may be empty (one sequence, ``[T, *F]``) or have several axes.
    seq_lengths: optional ``int[*B]``, each sequence's length for right-padded batches. After a sequence's end
      its carry is frozen (the returned carry is the one at its last valid step; a length of 0 returns the
      initial carry) and its outputs are zeros. Concrete lengths outside ``[0, T]`` raise ``ValueError``; traced
      ones (under ``jit``) cannot be checked and are clipped to ``[0, T]``.
    reverse: run each sequence backwards from its own last valid step (padding stays at the end); equal to
      reversing the valid part of each sequence, running forwards, and reversing the outputs back.
    time_major: the layout of ``xs`` and of the returned ``hs`` (and carries).
    unroll: how many steps ``lax.scan`` unrolls per loop iteration.
    return_all_carries: also return the carry after every step (``t``-th entry: after processing ``x_t``;
      padded steps hold the frozen final carry).
    mode: ``"auto"`` uses the cell's own whole-sequence path (``cell.sequence``: a parallel scan or a fused
      layer) when it has one, else the scan of ``step``; ``"step"`` always scans ``step``; ``"sequence"``
      requires ``cell.sequence``. The two paths compute the same function.
    remat: memory-bounded backprop for the scan of ``step`` (ignored by a cell's own parallel sequence path;
      a cell whose sequence path is a fused form of the same scan, ``cell.sequence.is_scan``, such as
      :func:`jaxrnn.lstm`'s, runs the scan of ``step`` when ``remat`` or ``unroll`` is set in ``mode="auto"``).
      ``False``: one scan, whose backward pass stores every step's residuals (memory ``O(T)``). ``True``:
      blocks of ``k = ceil(sqrt(T))`` steps, an outer scan over blocks whose body is a
      ``jax.checkpoint``-ed inner scan; the backward pass stores only the carries at block boundaries and
      recomputes one block at a time (the input projection too), so the memory kept for the backward pass
      grows like ``T/k + k ~ 2 sqrt(T)`` carries instead of ``T`` steps of activations, at the cost of one
      extra forward pass; what stays ``O(T)`` is the inputs, the outputs and their cotangents. An ``int``
      sets ``k``. ``T`` is padded to a multiple of ``k`` with masked steps
      (which leave the carry unchanged), so values and gradients equal those of ``remat=False``.
    hoist: apply the cell's ``input_transform`` (the input projection ``x W_i + b``) to all ``T`` steps as one
      large product before the loop (``True``), or inside the loop one step at a time (``False``). ``None``
      (default): hoist except on CPU. On XLA:CPU the loop that reads a precomputed ``[T, *B, nH]`` projection is
      slower than the loop that multiplies ``x_t`` itself (LSTM, B=32 T=128 F=128 H=256, one thread: forward
      78 -> 39 ms, forward+backward 227 -> 173 ms, CPU time); on GPU the large product is the faster form. Both
      compute the same function. For the scan of ``step``; a cell's own sequence path (e.g. the fused LSTM/GRU
      one, ``mode="auto"``) follows the default.

  Returns:
    ``(final_carry, hs)`` with ``hs: [*B, T, H]`` (or ``[T, *B, H]``); with ``return_all_carries=True``,
    ``(final_carry, hs, carries)`` where every leaf of ``carries`` has a time axis where ``hs`` has it.

  Raises:
    TypeError: ``xs`` is not floating, ``seq_lengths`` is not integer, ``cell`` is not a Cell.
    ValueError: wrong ranks or shapes, lengths out of range, an unknown ``mode``.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.gru(8)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> xs = jnp.ones((2, 5, 3))                                  # [B, T, F]
    >>> carry, hs = jaxrnn.unroll(cell, params, cell.initial_carry(params, (2,)), xs,
    ...                           seq_lengths=jnp.array([5, 2]))
    >>> hs.shape, bool((hs[1, 2:] == 0).all())
    ((2, 5, 8), True)
  """
  if mode not in MODES:
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
  block = _remat_block(remat)
  reverse = _checks.boolean("reverse", reverse)
  time_major = _checks.boolean("time_major", time_major)
  xs = _checks.floating("xs", xs)
  time_axis, batch_shape, num_steps = _layout(cell, xs, time_major)
  _checks.carry_batch(carry, batch_shape, xs.shape, "[T, *B, *F]" if time_major else "[*B, T, *F]")
  lengths = sequences.check_seq_lengths(seq_lengths, batch_shape, num_steps)
  hoist = sequences.default_hoist() if hoist is None else _checks.boolean("hoist", hoist)
  use_sequence = cell.sequence is not None and mode != "step"
  scan_options = block is not None or unroll is True or unroll not in (1, False)
  if mode == "auto" and getattr(cell.sequence, "is_scan", False) and scan_options:
    use_sequence = False  # a fused form of the same scan (e.g. the LSTM's): remat and unroll apply to the scan
  if mode == "sequence":
    if cell.sequence is None:
      raise ValueError(f"mode='sequence' needs a cell with a sequence path; {cell.name} has none")
    if return_all_carries:
      raise ValueError("return_all_carries=True needs mode='step' or 'auto' (the sequence path keeps no carries)")
  if return_all_carries:
    use_sequence = False

  xs_tm = jnp.moveaxis(xs, time_axis, 0)
  if reverse:
    xs_tm = sequences.reverse_valid(xs_tm, lengths)
  mask = None if lengths is None else sequences.length_mask(lengths, num_steps)

  if use_sequence:
    final, hs = cell.sequence(params, carry, xs_tm, mask)
    carries = None
  else:
    final, hs, carries = _scan(cell, params, carry, xs_tm, mask, unroll, return_all_carries, block, hoist)

  if reverse:
    hs = sequences.reverse_valid(hs, lengths)
    if carries is not None:
      carries = jax.tree.map(lambda a: sequences.reverse_valid(a, lengths), carries)
  hs = _to_layout(hs, len(batch_shape), time_major)
  if return_all_carries:
    return final, hs, _to_layout(carries, len(batch_shape), time_major)
  return final, hs


def _remat_block(remat: Any) -> Optional[int | bool]:
  """Validates ``remat``: ``None`` (off), ``True`` (block of ``ceil(sqrt(T))``) or a positive block size."""
  if remat is False or remat is None:
    return None
  if remat is True:
    return True
  return _checks.positive_int("remat", remat)


def _scan(cell, params, carry, xs_tm, mask, unroll, keep_carries, block=None, hoist=True):
  """``lax.scan`` of the cell's step over time-major inputs, freezing the carry where ``mask`` is False.

  With ``block`` (see ``unroll``'s ``remat``), a scan over blocks of a ``jax.checkpoint``-ed scan over steps.
  With ``hoist``, the cell's ``input_transform`` runs on all steps (of a block) before the loop.
  """
  if hoist and cell.input_transform is not None and cell.step_transformed is not None:
    transform = lambda x: cell.input_transform(params, x)
    step = cell.step_transformed
  else:
    transform = lambda x: x
    step = cell.step

  def body(c, inp):
    x, m = inp
    new_c, h = step(params, c, x)
    new_c, h = sequences.masked_step(m, new_c, c, h)
    return new_c, ((h, new_c) if keep_carries else h)

  if block is None:
    final, out = jax.lax.scan(body, carry, (transform(xs_tm), mask), unroll=unroll)
  else:
    final, out = _nested_scan(body, carry, xs_tm, mask, unroll, block, transform)
  if keep_carries:
    hs, carries = out
    return final, hs, carries
  return final, out, None


def _nested_scan(body, carry, inputs, mask, unroll, block, transform):
  """``lax.scan(body, carry, (transform(inputs), mask))`` as an outer scan over blocks of a checkpointed inner scan.

  The time-parallel ``transform`` (the cell's input projection) runs per block inside the checkpoint, so its
  ``[T, *B, nH]`` output is not kept for the backward pass either.
  """
  num_steps = jax.tree.leaves(inputs)[0].shape[0]
  k = max(1, math.ceil(math.sqrt(num_steps))) if block is True else min(block, max(num_steps, 1))
  n_blocks = -(-num_steps // k)
  pad = n_blocks * k - num_steps
  if pad:
    if mask is None:  # one flag per step; expand_to broadcasts it over the batch and feature axes
      mask = jnp.arange(n_blocks * k) < num_steps
    else:
      mask = jnp.concatenate([mask, jnp.zeros((pad,) + mask.shape[1:], mask.dtype)])
    inputs = jax.tree.map(lambda a: jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)]), inputs)
  blocked = jax.tree.map(lambda a: a.reshape((n_blocks, k) + a.shape[1:]), (inputs, mask))

  @jax.checkpoint
  def inner(c, block_inputs):
    x, m = block_inputs
    return jax.lax.scan(body, c, (transform(x), m), unroll=unroll)

  final, out = jax.lax.scan(inner, carry, blocked)
  out = jax.tree.map(lambda a: a.reshape((n_blocks * k,) + a.shape[2:])[:num_steps], out)
  return final, out


def static_unroll(
    cell: Cell,
    params: Params,
    carry: Carry,
    xs: Array,
    *,
    seq_lengths: Optional[Array] = None,
    reverse: bool = False,
    time_major: bool = False,
    return_all_carries: bool = False,
):
  """The same function as :func:`unroll`, as a plain Python loop over examples and steps: the test oracle.

  It calls ``cell.step`` on one example at a time, so it is slow and its trace grows with ``T``; use it to
  check :func:`unroll` and cells' sequence paths, not in models. ``seq_lengths`` must be concrete.
  """
  reverse = _checks.boolean("reverse", reverse)
  time_major = _checks.boolean("time_major", time_major)
  xs = _checks.floating("xs", xs)
  time_axis, batch_shape, num_steps = _layout(cell, xs, time_major)
  _checks.carry_batch(carry, batch_shape, xs.shape, "[T, *B, *F]" if time_major else "[*B, T, *F]")
  lengths = sequences.check_seq_lengths(seq_lengths, batch_shape, num_steps)
  n = math.prod(batch_shape)
  feat = xs.shape[xs.ndim - cell.input_ndim:]
  xs_flat = jnp.moveaxis(xs, time_axis, 0).reshape((num_steps, n) + feat)
  carry_flat = jax.tree.map(lambda a: a.reshape((n,) + a.shape[len(batch_shape):]), carry)
  lengths_flat = [num_steps] * n if lengths is None else np.asarray(lengths).reshape(n).tolist()

  finals, hs_all, carries_all = [], [], []
  for b in range(n):
    c = jax.tree.map(lambda a: a[b], carry_flat)
    length = lengths_flat[b]
    _, h_spec = jax.eval_shape(cell.step, params, c, xs_flat[0, b])
    hs = [jnp.zeros(h_spec.shape, h_spec.dtype) for _ in range(num_steps)]
    carries = [None] * num_steps
    order = range(length - 1, -1, -1) if reverse else range(length)
    for t in order:
      c, hs[t] = cell.step(params, c, xs_flat[t, b])
      carries[t] = c
    for t in range(length, num_steps):
      carries[t] = c
    finals.append(c)
    hs_all.append(jnp.stack(hs))
    if return_all_carries:
      carries_all.append(jax.tree.map(lambda *a: jnp.stack(a), *carries))

  def unflatten(leaves, time_axis_present):
    stacked = jnp.stack(leaves, axis=1 if time_axis_present else 0)  # [T, n, ...] or [n, ...]
    if time_axis_present:
      return stacked.reshape((num_steps,) + batch_shape + stacked.shape[2:])
    return stacked.reshape(batch_shape + stacked.shape[1:])

  final = jax.tree.map(lambda *a: unflatten(a, False), *finals)
  hs = _to_layout(unflatten(hs_all, True), len(batch_shape), time_major)
  if return_all_carries:
    carries = jax.tree.map(lambda *a: unflatten(a, True), *carries_all)
    return final, hs, _to_layout(carries, len(batch_shape), time_major)
  return final, hs
