"""The unroll engine: a cell over a whole sequence with ``jax.lax.scan``, and a Python-loop oracle."""

from __future__ import annotations

import collections
import functools
import math
import threading
from typing import Any, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import _checks
from jaxrnn import checkpointing
from jaxrnn import parallel_newton
from jaxrnn import path_choice
from jaxrnn import sequences
from jaxrnn.kernels import choice
from jaxrnn.types import Array, Carry, Cell, Params, RunOptions, SequencePath, carry_batch_shape

MODES = ("auto", "step", "sequence")


def _layout(cell: Cell, xs: Any, time_major: bool) -> Tuple[Any, Tuple[int, ...], int]:
  """Returns ``(time_axes, batch_shape, num_steps)`` of ``xs`` (``time_axes``: one per leaf, ``xs``'s structure).

  ``xs`` is an array or, for a cell whose ``input_ndim`` is a pytree, a pytree of that structure: each leaf has
  its own number of feature axes, and all share the time axis and the batch shape.
  """
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a jaxrnn.Cell, got {type(cell).__name__}")
  layout = "[T, *B, *F]" if time_major else "[*B, T, *F]"
  leaves, treedef = jax.tree.flatten(xs)
  if isinstance(cell.input_ndim, int):
    nds = [cell.input_ndim] * len(leaves)
  else:
    nd_leaves, nd_def = jax.tree.flatten(cell.input_ndim)
    if nd_def != treedef:
      raise ValueError(f"xs of {cell.name} must have the structure of its inputs {nd_def} (one leaf per "
                       f"input, e.g. (x, should_reset)), got {treedef}")
    nds = nd_leaves
  if not leaves:
    raise ValueError(f"xs must hold at least one array, got {xs!r}")
  axes, batch, steps = [], None, None
  for path, (leaf, nf) in zip(_paths(xs), zip(leaves, nds)):
    if leaf.ndim < nf + 1:
      raise ValueError(
          f"xs{path} must have shape {layout} with {nf} feature axis(es) and a time axis, i.e. rank >= {nf + 1}, "
          f"got shape {leaf.shape}")
    axis = 0 if time_major else leaf.ndim - nf - 1
    b = tuple(d for i, d in enumerate(leaf.shape[:leaf.ndim - nf]) if i != axis)  # symbolic dims (export) too
    if batch is not None and (b, leaf.shape[axis]) != (batch, steps):
      raise ValueError(f"every leaf of xs must have the same time and batch axes; xs{path} has T={leaf.shape[axis]} "
                       f"and batch shape {b}, the first leaf T={steps} and batch shape {batch}")
    batch, steps = b, leaf.shape[axis]
    axes.append(axis)
  assert batch is not None and steps is not None  # xs has a leaf
  return jax.tree.unflatten(treedef, axes), batch, steps


def _paths(xs: Any) -> list:
  """``jax.tree_util.keystr`` of each leaf's path (``""`` for a plain array), for messages."""
  return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(xs)[0]]


def _inputs(xs: Any) -> Any:
  """Checks ``xs``: a floating array, or a pytree of arrays (a cell with side inputs checks their dtypes)."""
  if isinstance(xs, (tuple, list, dict)):
    return jax.tree.map(jnp.asarray, xs)
  return _checks.floating("xs", xs)


def _first_shape(xs: Any) -> Tuple[int, ...]:
  return tuple(jax.tree.leaves(xs)[0].shape)


def _time_major(xs: Any, time_axes: Any) -> Any:
  return jax.tree.map(lambda a, ax: jnp.moveaxis(a, ax, 0), xs, time_axes)


def _default_carry(cell: Cell, params: Params, carry: Carry, batch_shape, xs, key) -> Carry:
  """The carry to start from: the one given, or the cell's initial carry for the batch shape of ``xs`` (and its map
  shape, for a cell whose carry covers the input's map: :attr:`jaxrnn.Cell.map_ndim`)."""
  if carry is None:
    features = _first_shape(xs)[1 + len(batch_shape):]  # the trailing axes after time and batch, in either layout
    return cell.initial_carry(params, carry_batch_shape(cell, batch_shape, features), key=key)
  if key is not None:
    raise ValueError("key= is for the default carry (carry=None); pass it to cell.initial_carry(params, "
                     "batch_shape, key=key) when you build the carry yourself")
  return carry


def run_options(options: Optional[RunOptions] = None, *, remat: Any = False, unroll: Any = None,
                hoist: Any = None, kernel: Optional[str] = None, newton: Any = None) -> RunOptions:
  """Checks and builds the :class:`jaxrnn.RunOptions` of a run, from ``options`` or from the keywords (not both).

  >>> run_options(remat=True, unroll=4)
  RunOptions(remat=True, unroll=4, hoist=None, kernel=None, native=None, newton=None)
  """
  keywords = RunOptions(remat=None if remat is False else remat, unroll=unroll, hoist=hoist, kernel=kernel,
                        newton=None if newton is None or newton is False else newton)
  if options is not None:
    if not isinstance(options, RunOptions):
      raise TypeError(f"options must be a jaxrnn.RunOptions, got {type(options).__name__}")
    if keywords.changed_fields():
      raise ValueError(f"pass the run options either as options= or as keywords, not both; got options={options} "
                       f"and {sorted(keywords.changed_fields())}")
    keywords = options
  unroll_steps = keywords.unroll
  if unroll_steps is not True and unroll_steps is not None:
    unroll_steps = _checks.positive_int("unroll", unroll_steps if unroll_steps is not False else 1)
  hoist = None if keywords.hoist is None else _checks.boolean("hoist", keywords.hoist)
  native = None if keywords.native is None else _checks.boolean("native", keywords.native)
  kernel = choice.check(keywords.kernel)
  if native and kernel not in (None, "xla"):
    raise ValueError(f"native=True and kernel={kernel!r} ask for two implementations; give one of them")
  newton = None if keywords.newton is None else parallel_newton.check_settings(keywords.newton)
  remat_option = checkpointing.check(keywords.remat)
  if newton is not None and remat_option is not None:
    raise ValueError(f"remat={remat_option!r} bounds the memory of the scan of step, which newton= replaces: the "
                     f"parallel-in-time solver keeps all T carries (its backward pass is one adjoint scan); give "
                     f"one of them")
  return RunOptions(remat=remat_option, unroll=unroll_steps, hoist=hoist, kernel=kernel,
                    native=native, newton=newton)


def _to_layout(tree: Any, batch_ndim: int, time_major: bool) -> Any:
  """Moves the time axis of time-major leaves ``[T, *B, ...]`` to the caller's layout."""
  if time_major:
    return tree
  return jax.tree.map(lambda a: jnp.moveaxis(a, 0, batch_ndim), tree)


def unroll(
    cell: Cell,
    params: Params,
    carry: Optional[Carry],
    xs: Any,
    *,
    seq_lengths: Optional[Array] = None,
    reverse: bool = False,
    time_major: bool = False,
    unroll: int | bool | None = None,
    return_all_carries: bool = False,
    mode: str = "auto",
    remat: Any = False,
    hoist: Optional[bool] = None,
    kernel: Optional[str] = None,
    newton: Any = None,
    options: Optional[RunOptions] = None,
    key: Optional[Array] = None,
) -> Tuple[Any, ...]:
  """Runs ``cell`` over a sequence with ``jax.lax.scan``: ``(final_carry, hs)``.

  Compile time does not grow with ``T``: the step is traced once. When the cell has a time-parallel part
  (``cell.input_transform``) it can be applied to all steps at once, outside the loop (``hoist``).

  Outside ``jit`` (a notebook, an eager loop), a call is compiled once per cell, run settings and input shapes,
  and later calls with the same ones reuse that program, as a jitted function would: so the cell's functions are
  traced once, and must be pure (as under ``jit``). Concrete ``seq_lengths`` are still checked on every call.
  Inside a trace the run is a nested ``jit`` (its trace is reused as well).

  The run options (``remat``, ``unroll``, ``hoist``, ``kernel``, or one :class:`jaxrnn.RunOptions` as
  ``options=``) change memory and speed, never values: they reach every scan, including the scans of the inner
  cells of a combinator (a ``stack`` of ``bidirectional`` layers, a ``stack`` of ``stack``), and the same key gives
  the same dropout masks on every path.

  Args:
    cell: a :class:`jaxrnn.Cell`.
    params: the cell's parameters.
    carry: the initial carry, leaves ``[*B, ...]`` (``cell.initial_carry(params, batch_shape)``), or ``None``
      for the cell's initial carry for the batch shape of ``xs`` (with ``key``, if given; for a cell whose carry
      covers its input's map, :attr:`jaxrnn.Cell.map_ndim`, for the map shape of ``xs`` too, so that one set of
      params runs on maps of any size).
    xs: inputs ``[*B, T, *F]`` (``time_major=False``, the default) or ``[T, *B, *F]`` (``time_major=True``); ``B``
      may be empty (one sequence, ``[T, *F]``) or have several axes. For a cell with several inputs (its
      ``input_ndim`` is a pytree, e.g. :func:`jaxrnn.reset_on`'s ``(x, should_reset)``), a pytree of such arrays
      sharing ``B`` and ``T``.
    seq_lengths: optional ``int[*B]``, each sequence's length for right-padded batches. After a sequence's end
      its carry is frozen (the returned carry is the one at its last valid step; a length of 0 returns the
      initial carry) and its outputs are zeros. Concrete lengths outside ``[0, T]`` raise ``ValueError``; traced
      ones (under ``jit``) cannot be checked and are clipped to ``[0, T]``.
    reverse: run each sequence backwards from its own last valid step (padding stays at the end); equal to
      reversing the valid part of each sequence, running forwards, and reversing the outputs back.
    time_major: the layout of ``xs`` and of the returned ``hs`` (and carries).
    unroll: how many steps ``lax.scan`` unrolls per loop iteration (``True``: all; ``None``: the backend's measured
      default, 8 on GPU and 1 elsewhere: ``jaxrnn.sequences.default_unroll()``).
    return_all_carries: also return the carry after every step (``t``-th entry: after processing ``x_t``;
      padded steps hold the frozen final carry). Runs the scan of ``step``.
    mode: ``"auto"`` uses the cell's own whole-sequence path (``cell.sequence``: a parallel scan, a fused layer,
      a combinator's layer-by-layer run) when it has one, it honours every run option that is set
      (``cell.sequence.honours``) and, for a path that declares where it pays (``cell.sequence.auto``: the
      parallel scans), the measured rule says it is the faster one for this backend and ``T`` (separately for
      forward-only and differentiated runs; :mod:`jaxrnn.path_choice`), else the scan of ``step``; ``"step"``
      always scans ``step``; ``"sequence"`` requires ``cell.sequence`` and raises if it cannot honour a run
      option. The paths compute the same function.
    remat: memory-bounded backprop for the scan of ``step``. ``False``: one scan, whose backward pass stores
      every step's residuals (memory ``O(T)``). ``True``: blocks of ``k = ceil(sqrt(T))`` steps, an outer scan
      over blocks whose body is a ``jax.checkpoint``-ed inner scan; the backward pass stores only the carries at
      block boundaries and recomputes one block at a time (the input projection too), so the memory kept for
      the backward pass grows like ``T/k + k ~ 2 sqrt(T)`` carries instead of ``T`` steps of activations, at the
      cost of one extra forward pass; what stays ``O(T)`` is the inputs, the outputs and their cotangents. An
      ``int`` sets ``k``. A :class:`jaxrnn.RematBudget` ``(carries=n)`` keeps at most ``n`` checkpoints with
      more nested levels when ``n`` is small, one extra forward pass per level (:mod:`jaxrnn.checkpointing`).
      ``T`` is padded with masked steps (which leave the carry unchanged), so values and gradients equal those
      of ``remat=False``. A fused or parallel sequence path does not honour it, so in ``mode="auto"`` the scan of
      ``step`` runs instead (inside combinators too); ``newton`` replaces that scan, so the two together raise.
    hoist: apply the cell's ``input_transform`` (the input projection ``x W_i + b``) to all ``T`` steps as one
      large product before the loop (``True``), or inside the loop one step at a time (``False``). ``None``
      (default): hoist except on CPU. On XLA:CPU the loop that reads a precomputed ``[T, *B, nH]`` projection is
      slower than the loop that multiplies ``x_t`` itself (LSTM, B=32 T=128 F=128 H=256, one thread: forward
      78 -> 39 ms, forward+backward 227 -> 173 ms, CPU time); on GPU the large product is the faster form. Both
      compute the same function. The fused LSTM/GRU path honours it too.
    kernel: which implementation runs the cell's sequence path (:attr:`jaxrnn.RunOptions.kernel`): ``None`` (the
      backend's measured default, where the call fits it), ``"xla"`` (the JAX path), ``"cudnn"`` (:func:`jaxrnn.lstm`
      on GPU) or ``"pallas"`` (the linear recurrence of ``min_gru``, ``min_lstm``, ``lru``, ``rg_lru``). A kernel
      given by name runs or raises; the scan of ``step`` is ``"xla"`` only.
    newton: ``None`` (off), ``True`` (default settings) or :class:`jaxrnn.ParallelNewton` settings: evaluate
      the scan of ``step`` parallel in time by Newton / quasi-Newton iterations (:mod:`jaxrnn.parallel_newton`),
      with exact gradients; an unconverged solve is finished by the scan of ``step`` or raises, as the settings
      say. In ``mode="auto"`` a combinator runs each inner cell this way (a ``stack`` layer by layer);
      ``mode="step"`` solves the cell's whole step (all layers' carries as one state). The iterations made and
      the residual: :func:`jaxrnn.newton_unroll`.
    options: the run options as one :class:`jaxrnn.RunOptions` (what combinators pass on); not together with
      ``remat``/``unroll``/``hoist``/``kernel``/``newton``.
    key: with ``carry=None``, the key of ``cell.initial_carry`` (dropout masks).

  Returns:
    ``(final_carry, hs)`` with ``hs: [*B, T, H]`` (or ``[T, *B, H]``); with ``return_all_carries=True``,
    ``(final_carry, hs, carries)`` where every leaf of ``carries`` has a time axis where ``hs`` has it.

  Raises:
    TypeError: ``xs`` is not floating, ``seq_lengths`` is not integer, ``cell`` is not a Cell.
    ValueError: wrong ranks or shapes, lengths out of range, an unknown ``mode``, a run option that
      ``mode="sequence"`` cannot honour.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.gru(8)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> xs = jnp.ones((2, 5, 3))                                  # [B, T, F]
    >>> carry, hs = jaxrnn.unroll(cell, params, None, xs, seq_lengths=jnp.array([5, 2]))  # None: initial carry
    >>> hs.shape, bool((hs[1, 2:] == 0).all())
    ((2, 5, 8), True)
  """
  if mode not in MODES:
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
  options = run_options(options, remat=remat, unroll=unroll, hoist=hoist, kernel=kernel, newton=newton)
  reverse = _checks.boolean("reverse", reverse)
  time_major = _checks.boolean("time_major", time_major)
  return_all_carries = _checks.boolean("return_all_carries", return_all_carries)
  xs, seq_lengths = _eager_checks(cell, xs, seq_lengths, time_major)
  use_sequence = _use_sequence(cell, mode, options, return_all_carries)
  if not use_sequence and options.kernel not in (None, "xla"):
    raise ValueError(f"kernel={options.kernel!r} runs a cell's sequence path, but this run scans the step of "
                     f"{cell.name} ({_why_step(cell, mode, options, return_all_carries)}); the scan of step is "
                     f"kernel='xla' only")
  if options.native and not use_sequence:
    raise ValueError(f"RunOptions(native=True) needs a sequence path with a native form; {cell.name} runs the scan "
                     f"of step here (mode={mode!r}" + (", return_all_carries=True)" if return_all_carries else ")"))
  program = _program(_unroll, cell, options, mode, use_sequence, return_all_carries, reverse, time_major)
  return program(params, carry, xs, seq_lengths, key)


def _eager_checks(cell: Cell, xs: Any, seq_lengths: Any, time_major: bool) -> Tuple[Any, Optional[Array]]:
  """``(xs, seq_lengths)`` checked before the jitted program runs, which cannot read concrete values: concrete
  lengths outside ``[0, T]`` raise here, on every call."""
  xs = _inputs(xs)
  _, batch_shape, num_steps = _layout(cell, xs, time_major)
  return xs, sequences.check_seq_lengths(seq_lengths, batch_shape, num_steps)


# The jitted programs of recent runs: (body, id(cell), the run's static settings) -> (cell, program). Outside ``jit``,
# ``lax.scan`` compiles its body again on every call (the body is a new closure each time, so JAX's caches miss:
# 110-290 ms a call for a small LSTM, 330-800 ms with its gradient); one jitted program per cell and settings is
# compiled once per shape, as under the user's own ``jit``. Inside a trace it is a nested ``jit`` whose trace is
# cached. The entry holds the cell, so its id is not reused while the entry lives.
_PROGRAMS: "collections.OrderedDict[Tuple[Any, ...], Tuple[Cell, Any]]" = collections.OrderedDict()
_MAX_PROGRAMS = 256
_PROGRAMS_LOCK = threading.Lock()


def _typed(value: Any) -> Any:
  """``value`` with the type of every leaf, as a cache key: ``True == 1`` in Python, but ``unroll=True`` (all steps)
  is not ``unroll=1``, nor ``remat=True`` ``remat=1``."""
  if isinstance(value, tuple):
    return type(value), tuple(_typed(v) for v in value)
  return type(value), value


def _program(body: Any, cell: Cell, *static: Any):
  """``jax.jit(functools.partial(body, cell, *static))``, from :data:`_PROGRAMS` when a recent run had the same."""
  key = (body, id(cell), _typed(static))
  with _PROGRAMS_LOCK:
    hit = _PROGRAMS.get(key)
    if hit is not None and hit[0] is cell:
      _PROGRAMS.move_to_end(key)
      return hit[1]
    program = jax.jit(functools.partial(body, cell, *static))
    _PROGRAMS[key] = (cell, program)
    while len(_PROGRAMS) > _MAX_PROGRAMS:
      _PROGRAMS.popitem(last=False)
    return program


def _unroll(cell: Cell, options: RunOptions, mode: str, use_sequence: bool, return_all_carries: bool, reverse: bool,
         time_major: bool, params: Params, carry: Optional[Carry], xs: Any, seq_lengths: Optional[Array],
         key: Optional[Array]) -> Tuple[Any, ...]:
  """The body of :func:`unroll` after its eager checks (traced once per cell, settings and shapes)."""
  run = _prepare(cell, params, carry, xs, seq_lengths, reverse, time_major, key)
  if use_sequence:
    final, hs = _auto_or_sequence(cell, params, run, options, mode)
    carries = None
  else:
    final, hs, carries = _scan(cell, params, run.carry, run.xs_tm, run.mask, options, return_all_carries,
                               run.batch_shape)
  hs, carries = _finish(run, hs, carries)
  if return_all_carries:
    return final, hs, carries
  return final, hs


class _Run(NamedTuple):
  """A run's checked inputs, time-major (what :func:`unroll` and :func:`newton_unroll` share)."""

  xs_tm: Any  # [T, *B, *F] (valid steps reversed with ``reverse``)
  carry: Carry  # the initial carry
  lengths: Optional[Array]  # [*B] or None
  mask: Optional[Array]  # bool[T, *B] or None
  batch_shape: Tuple[int, ...]
  reverse: bool
  time_major: bool


def _prepare(cell: Cell, params: Params, carry: Optional[Carry], xs: Any, seq_lengths: Optional[Array],
             reverse: bool, time_major: bool, key: Optional[Array]) -> _Run:
  """Checks the inputs (``reverse`` and ``time_major`` already booleans), fills in the default carry, and puts
  ``xs`` time-major with each sequence's valid steps reversed for ``reverse``."""
  xs = _inputs(xs)
  time_axes, batch_shape, num_steps = _layout(cell, xs, time_major)
  carry = _default_carry(cell, params, carry, batch_shape, xs, key)
  _checks.carry_batch(carry, batch_shape, _first_shape(xs), "[T, *B, *F]" if time_major else "[*B, T, *F]")
  lengths = sequences.check_seq_lengths(seq_lengths, batch_shape, num_steps)
  xs_tm = _time_major(xs, time_axes)
  if reverse:
    xs_tm = jax.tree.map(lambda a: sequences.reverse_valid(a, lengths), xs_tm)
  mask = None if lengths is None else sequences.length_mask(lengths, num_steps)
  return _Run(xs_tm, carry, lengths, mask, batch_shape, reverse, time_major)


def _finish(run: _Run, hs: Any, carries: Any) -> Tuple[Any, Any]:
  """``hs`` (and ``carries``, or ``None``) from time-major in the run's order to the caller's layout and order."""
  if run.reverse:
    hs = sequences.reverse_valid(hs, run.lengths)
    if carries is not None:
      carries = jax.tree.map(lambda a: sequences.reverse_valid(a, run.lengths), carries)
  nb = len(run.batch_shape)
  return _to_layout(hs, nb, run.time_major), None if carries is None else _to_layout(carries, nb, run.time_major)


def newton_unroll(
    cell: Cell,
    params: Params,
    carry: Optional[Carry],
    xs: Any,
    *,
    seq_lengths: Optional[Array] = None,
    reverse: bool = False,
    time_major: bool = False,
    newton: Any = True,
    warm_start: Optional[Carry] = None,
    key: Optional[Array] = None,
) -> Tuple[Carry, Array, Carry, parallel_newton.NewtonInfo]:
  """:func:`unroll` of the cell's step by the parallel-in-time solver, with the carries and how the solve went.

  The same function as ``unroll(..., mode="step")`` (values and gradients), computed by the iterations of
  :class:`jaxrnn.ParallelNewton` (:mod:`jaxrnn.parallel_newton`) on the cell's whole step (a ``stack``'s layers
  as one state).

  Args:
    cell, params, carry, xs, seq_lengths, reverse, time_major, key: as in :func:`unroll`.
    newton: :class:`jaxrnn.ParallelNewton` settings (``True``: the defaults).
    warm_start: ``None`` (start from the initial carry at every step) or a guess of every carry, in the layout
      of the returned ``carries`` (e.g. those of an earlier call with nearby params or inputs); no gradient flows
      into it. The answer does not depend on it, only the number of iterations.

  Returns:
    ``(final_carry, hs, carries, info)``: as ``unroll(..., return_all_carries=True)``, and a
    :class:`jaxrnn.parallel_newton.NewtonInfo` (``iterations``, ``residual [*B]``, ``converged``,
    ``sequential``: whether the scan of ``step`` finished the run).

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.gru(8)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> xs = jax.random.normal(jax.random.key(1), (2, 50, 3))
    >>> final, hs, carries, info = jaxrnn.newton_unroll(cell, params, None, xs,
    ...                                                 newton=jaxrnn.ParallelNewton(jacobian="full"))
    >>> bool(jnp.allclose(hs, jaxrnn.unroll(cell, params, None, xs)[1], atol=1e-5)), bool(info.converged)
    (True, True)
  """
  settings = parallel_newton.check_settings(newton)
  reverse = _checks.boolean("reverse", reverse)
  time_major = _checks.boolean("time_major", time_major)
  xs, seq_lengths = _eager_checks(cell, xs, seq_lengths, time_major)
  program = _program(_newton_unroll, cell, settings, reverse, time_major)
  return program(params, carry, xs, seq_lengths, key, warm_start)


def _newton_unroll(cell: Cell, settings: Any, reverse: bool, time_major: bool, params: Params, carry: Optional[Carry],
                xs: Any, seq_lengths: Optional[Array], key: Optional[Array],
                warm_start: Optional[Carry]) -> Tuple[Carry, Array, Carry, parallel_newton.NewtonInfo]:
  """The body of :func:`newton_unroll` after its eager checks."""
  run = _prepare(cell, params, carry, xs, seq_lengths, reverse, time_major, key)
  if warm_start is not None:
    warm_start = jax.tree.map(jnp.asarray, warm_start)
    if not time_major:
      warm_start = jax.tree.map(lambda a: jnp.moveaxis(a, len(run.batch_shape), 0), warm_start)
    if reverse:
      warm_start = jax.tree.map(lambda a: sequences.reverse_valid(a, run.lengths), warm_start)
  final, hs, carries, info = parallel_newton.solve(cell, params, run.carry, run.xs_tm, run.mask, settings,
                                                   run.batch_shape, warm_start=warm_start)
  hs, carries = _finish(run, hs, carries)
  return final, hs, carries, info


def _auto_or_sequence(cell: Cell, params: Params, run: _Run, options: RunOptions, mode: str):
  """The cell's sequence path, or in ``mode="auto"`` what its rule (:attr:`SequencePath.auto`) says is faster:
  the scan of ``step`` for undifferentiated runs, differentiated runs, or both (:mod:`jaxrnn.path_choice`). A
  kernel asked for by name, or ``native=True``, always takes the path."""
  path = cell.sequence
  assert path is not None  # unroll takes this branch only for a cell with a sequence path
  sequence = lambda p, c, x, m: path.run(p, c, x, m, options)
  if mode != "auto" or options.kernel is not None or options.native:
    return sequence(params, run.carry, run.xs_tm, run.mask)
  num_steps = jax.tree.leaves(run.xs_tm)[0].shape[0]
  picked = path_choice.choose(path.auto, num_steps, run.carry)
  if picked.forward and picked.gradient:
    return sequence(params, run.carry, run.xs_tm, run.mask)
  scan = lambda p, c, x, m: _scan(cell, p, c, x, m, options, False, run.batch_shape)[:2]
  if not picked.forward and not picked.gradient:
    return scan(params, run.carry, run.xs_tm, run.mask)
  split = path_choice.split(sequence if picked.forward else scan, sequence if picked.gradient else scan)
  return split(params, run.carry, run.xs_tm, run.mask)


def _use_sequence(cell: Cell, mode: str, options: RunOptions, return_all_carries: bool) -> bool:
  """Whether the run takes the cell's own sequence path (see ``unroll``'s ``mode``)."""
  if cell.sequence is not None and not isinstance(cell.sequence, SequencePath):
    raise TypeError(f"cell.sequence must be a jaxrnn.SequencePath(run, honours) or None, got "
                    f"{type(cell.sequence).__name__} (a plain function does not say which run options it honours)")
  if mode == "step":
    return False
  if mode == "sequence":
    if cell.sequence is None:
      raise ValueError(f"mode='sequence' needs a cell with a sequence path; {cell.name} has none")
    if return_all_carries:
      raise ValueError("return_all_carries=True needs mode='step' or 'auto' (the sequence path keeps no carries)")
    missing = asked_options(options) - cell.sequence.honours
    if missing:
      raise ValueError(f"the sequence path of {cell.name} does not honour the run option(s) {sorted(missing)} "
                       f"(it honours {sorted(cell.sequence.honours)}); use mode='auto' or 'step' to scan step")
    return True
  if cell.sequence is None or return_all_carries:
    return False
  return asked_options(options) <= cell.sequence.honours


def asked_options(options: RunOptions) -> frozenset:
  """The run options a path must honour: the set ones, less ``native=False`` (which every path without a native
  form honours by running as it does)."""
  return options.set_fields() - ({"native"} if options.native is False else set())


def _why_step(cell: Cell, mode: str, options: RunOptions, return_all_carries: bool) -> str:
  """Why a run scans ``step`` instead of the cell's sequence path (for messages)."""
  if mode == "step":
    return "mode='step'"
  if return_all_carries:
    return "return_all_carries=True"
  if cell.sequence is None:
    return "it has no sequence path"
  return f"its sequence path does not honour {sorted(options.set_fields() - cell.sequence.honours)}"


def _scan(cell: Cell, params: Params, carry: Carry, xs_tm: Any, mask: Optional[Array], options: RunOptions,
          keep_carries: bool = False, batch_shape: Tuple[int, ...] = ()):
  """``lax.scan`` of the cell's step over time-major inputs, freezing the carry where ``mask`` is False.

  With ``options.remat``, nested scans over blocks of ``jax.checkpoint``-ed scans (:mod:`jaxrnn.checkpointing`).
  With ``options.hoist`` (``None``: the backend's default), the cell's ``input_transform`` runs on all steps (of an
  innermost block) before the loop.
  With ``options.newton``, the parallel-in-time solver instead (``batch_shape``: ``*B``).
  """
  if options.newton is not None:
    final, hs, carries, _ = parallel_newton.solve(cell, params, carry, xs_tm, mask, options.newton, batch_shape,
                                                  unroll=sequences.scan_unroll(options.unroll))
    return final, hs, (carries if keep_carries else None)
  hoist = sequences.default_hoist() if options.hoist is None else options.hoist
  input_transform = cell.input_transform
  if hoist and input_transform is not None and cell.step_transformed is not None:
    transform = lambda x: input_transform(params, x)
    step = cell.step_transformed
  else:
    transform = lambda x: x
    step = cell.step

  def body(c, inp):
    x, m = inp
    new_c, h = step(params, c, x)
    new_c, h = sequences.masked_step(m, new_c, c, h)
    return new_c, ((h, new_c) if keep_carries else h)

  if options.remat is None:
    final, out = jax.lax.scan(body, carry, (transform(xs_tm), mask), unroll=sequences.scan_unroll(options.unroll))
  else:
    levels = checkpointing.plan(jax.tree.leaves(xs_tm)[0].shape[0], options.remat)
    final, out = checkpointing.nested_scan(body, carry, xs_tm, mask, sequences.scan_unroll(options.unroll), levels,
                                           transform)
  if keep_carries:
    hs, carries = out
    return final, hs, carries
  return final, out, None


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
) -> Tuple[Any, ...]:
  """The same function as :func:`unroll`, as a plain Python loop over examples and steps: the test oracle.

  It calls ``cell.step`` on one example at a time, so it is slow and its trace grows with ``T``; use it to
  check :func:`unroll` and cells' sequence paths, not in models. ``seq_lengths`` must be concrete.
  """
  reverse = _checks.boolean("reverse", reverse)
  time_major = _checks.boolean("time_major", time_major)
  xs = _inputs(xs)
  time_axes, batch_shape, num_steps = _layout(cell, xs, time_major)
  carry = _default_carry(cell, params, carry, batch_shape, xs, None)
  _checks.carry_batch(carry, batch_shape, _first_shape(xs), "[T, *B, *F]" if time_major else "[*B, T, *F]")
  lengths = sequences.check_seq_lengths(seq_lengths, batch_shape, num_steps)
  n = math.prod(batch_shape)
  nb = len(batch_shape)
  xs_flat = jax.tree.map(lambda a: a.reshape((num_steps, n) + a.shape[1 + nb:]), _time_major(xs, time_axes))
  carry_flat = jax.tree.map(lambda a: a.reshape((n,) + a.shape[nb:]), carry)
  lengths_flat = [num_steps] * n if lengths is None else np.asarray(lengths).reshape(n).tolist()
  x_at = lambda t, b: jax.tree.map(lambda a: a[t, b], xs_flat)

  finals, hs_all, carries_all = [], [], []
  for b in range(n):
    c = jax.tree.map(lambda a: a[b], carry_flat)
    length = lengths_flat[b]
    _, h_spec = jax.eval_shape(cell.step, params, c, x_at(0, b))
    hs = [jnp.zeros(h_spec.shape, h_spec.dtype) for _ in range(num_steps)]
    carries = [None] * num_steps
    order = range(length - 1, -1, -1) if reverse else range(length)
    for t in order:
      c, hs[t] = cell.step(params, c, x_at(t, b))
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
