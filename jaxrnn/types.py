"""The cell contract: a recurrent cell is an immutable value of pure functions.

A :class:`Cell` is to a recurrent network what ``optax.GradientTransformation`` is to an optimiser: a
``NamedTuple`` of pure functions built by a snake_case factory (``jaxrnn.lstm(hidden_size, ...)``) that closes
over the hyperparameters. Arrays live in ``params`` and ``carry`` (NamedTuples with named fields), never in the
cell.

Shapes below use ``*B`` for any number of leading batch axes (including none), ``*F`` for the cell's per-example
input feature shape (``[input_size]`` for every vector cell; ``cell.input_ndim`` says how many axes it has) and
``T`` for time.

Every function honours one order: ``(carry, h)`` out of every step and every unroll, as ``jax.lax.scan`` does.
The arguments of these functions are positional (the protocols below declare them positional-only: a cell's
functions may name them as they like), except the keywords of ``initial_carry``.
"""

from __future__ import annotations

from typing import Any, FrozenSet, NamedTuple, Optional, Protocol, Sequence, Tuple, Union

import jax

Array = jax.Array
PRNGKey = jax.Array
Params = Any  # A pytree of arrays, in practice a NamedTuple per cell (e.g. ``LSTMParams``).
Carry = Any  # A pytree of arrays, in practice a NamedTuple per cell (e.g. ``LSTMCarry(h, c)``).
Shape = Tuple[int, ...]
InputSize = Union[int, Sequence[int]]
DType = Any


class InitFn(Protocol):
  """``init(key, input_size) -> params``.

  Args:
    key: a JAX PRNG key (typed ``jax.random.key`` or raw ``jax.random.PRNGKey``); there is no default key.
    input_size: the per-example input feature size ``F`` (an ``int``; a tuple for cells whose input has
      several feature axes, such as convolutional cells).

  Returns:
    The cell's parameters, a NamedTuple of arrays in the cell's ``param_dtype``.
  """

  def __call__(self, key: PRNGKey, input_size: InputSize, /) -> Params:
    ...


class InitialCarryFn(Protocol):
  """``initial_carry(params, batch_shape=(), dtype=None, *, key=None) -> carry``.

  Args:
    params: the cell's parameters (a learned initial carry reads them; most cells only read sizes from them).
      A PRNG key or a shape in this place (the Flax habit ``initial_carry(key, shape)``) raises a ``TypeError``
      that says what to pass.
    batch_shape: the leading shape of the carry's leaves: the batch shape ``*B`` (``()`` for one example),
      followed, for a cell that declares :attr:`Cell.map_ndim` ``= k > 0`` (a convolutional cell), by the ``k``
      map axes ``S`` of its input ``[*B, *S, C]``: such a carry covers the map, and its size comes from the input
      it will run on, not from the params (:func:`carry_batch_shape` builds this shape from an input's).
    dtype: the carry's dtype; ``None`` means the dtype of the parameters.
    key: a PRNG key for the randomness of a sequence (dropout masks, see :func:`jaxrnn.dropout`); ``None`` means
      inference (no dropout). Every cell takes it; cells without randomness draw nothing from it, and
      combinators split it over their inner cells.

  Returns:
    The carry at ``t = 0``, a NamedTuple whose leaves have shape ``[*B, ...]``.
  """

  def __call__(self, params: Params, /, batch_shape: Shape = (), dtype: Optional[DType] = None, *,
               key: Optional[PRNGKey] = None) -> Carry:
    ...


class StepFn(Protocol):
  """``step(params, carry, x) -> (carry, h)``: one time step.

  Args:
    params: the cell's parameters.
    carry: the carry at ``t - 1``, leaves ``[*B, ...]``.
    x: the input at ``t``, ``[*B, *F]``. ``B`` must equal the carry's batch shape.

  Returns:
    ``(carry, h)``: the carry at ``t`` (same structure, shapes and dtypes as the carry given, so that it can be
    the carry of ``lax.scan``) and the output ``h`` at ``t``, ``[*B, H]``. Leading batch axes give exactly what
    ``jax.vmap`` over them gives.
  """

  def __call__(self, params: Params, carry: Carry, x: Array, /) -> Tuple[Carry, Array]:
    ...


class InputTransformFn(Protocol):
  """``input_transform(params, xs) -> us``: the part of ``step`` that does not depend on the carry.

  It is applied to a whole sequence at once (``xs: [T, *B, *F]`` or any leading axes), usually one large matrix
  product, so that the scan body only does the recurrent part. For every cell that has it,
  ``step(p, c, x) == step_transformed(p, c, input_transform(p, x))``. For a cell whose input is a pytree
  (``reset_on``'s ``(x, should_reset)``) both ``xs`` and ``us`` are pytrees (the flags ride along).
  """

  def __call__(self, params: Params, xs: Any, /) -> Any:
    ...


class ParallelNewton(NamedTuple):
  r"""Settings of the parallel-in-time solver (:mod:`jaxrnn.parallel_newton`): DEER, quasi-DEER, Picard, Jacobi.

  The unknowns are all the carries ``c_1 .. c_T`` at once. Each iteration evaluates the step at every ``t`` in
  parallel from the previous iterate ``c^i`` and solves one linear recurrence with an associative scan:

  .. math::

     c^{i+1}_t = A_t\, c^{i+1}_{t-1} + \big(f(c^i_{t-1}, x_t) - A_t\, c^i_{t-1}\big), \qquad c^{i+1}_0 = c_0,

  where ``f`` is the (masked) step's new carry and ``A_t`` approximates ``∂f/∂c`` at ``c^i_{t-1}``. With any
  ``A_t`` the first ``i`` carries are exact after ``i`` iterations, so at most ``T`` iterations reach the
  solution; with the exact Jacobian (Newton, Lim et al. 2024, "DEER") convergence is quadratic near it.

  Fields:
    jacobian: ``A_t``. ``"full"``: the Jacobian ``∂f/∂c`` (``D`` JVPs per step, a ``[D, D]`` matrix product scan:
      ``O(T D^3)`` work; DEER). ``"diagonal"``: its diagonal (quasi-DEER, Gonzalez et al. 2024; ``O(T D)`` scan):
      the cell's :attr:`Cell.carry_jacobian_diagonal` where it declares one, else the diagonal of the full
      Jacobian (same ``D`` JVPs, cheap scan). ``"picard"``: ``A_t = I``. ``"jacobi"``: ``A_t = 0``. Integer carry
      leaves (a step counter) always take the Picard update (exact in one iteration for a counter), other
      non-float leaves the Jacobi update. At the steps where the cell declares that it restarts its carry
      (:attr:`Cell.carry_resets`: :func:`jaxrnn.reset_on`'s flags) ``A_t = 0`` for every choice (the exact
      Jacobian there), integer leaves included, so each segment of a packed row converges on its own (``"jacobi"``
      has ``A_t = 0`` everywhere already).
    tol: convergence when ``|c^i_t - f(c^i_{t-1}, x_t)| <= tol * (1 + |f(c^i_{t-1}, x_t)|)`` for every element,
      step and example. ``None``: ``eps ** 0.75`` of the carry's dtype (float64 ``1.8e-12``, float32 ``6.4e-6``).
    max_iters: the iteration cap; ``None`` means ``T`` (enough in exact arithmetic).
    damping: ``A_t / (1 + damping)``: shrinks the Jacobian toward the Jacobi update (``damping -> inf``), the
      direction in which a Levenberg-Marquardt step (ELK, Gonzalez et al. 2024) moves; it trades the quadratic
      convergence for robustness on unstable dynamics. (A fixed shrink, not ELK's adaptive Kalman-smoother step.)
      Independently, an example whose Newton update is not finite takes the Jacobi update for that iteration.
    on_failure: what happens when the cap is reached before ``tol``: ``"sequential"`` runs the scan of ``step``
      instead (the answer is then exact, the solver's work lost), ``"raise"`` raises a ``RuntimeError`` (from a
      host callback, also under ``jit``, where it surfaces as the runtime's error carrying the message).
  """

  jacobian: str = "diagonal"
  tol: Optional[float] = None
  max_iters: Optional[int] = None
  damping: float = 0.0
  on_failure: str = "sequential"


class RematBudget(NamedTuple):
  """A memory budget for backprop through the scan of ``step``: ``unroll(..., remat=RematBudget(carries=n))``.

  The backward pass keeps at most ``carries`` carry-sized checkpoints at once (the innermost level's steps count
  one each: they hold the step's residuals). :mod:`jaxrnn.checkpointing` splits the ``T`` steps into the fewest
  nested levels of checkpointed scans whose sizes sum to at most ``carries`` (each level beyond the first costs
  one extra forward pass): ``carries >= T`` is the plain scan, ``carries >= 2 ceil(sqrt(T))`` is ``remat=True``'s
  two levels, smaller budgets take more levels, down to about ``3 log_3 T`` (below that: ``ValueError``).
  Gradients equal those of ``remat=False``. :func:`jaxrnn.checkpointing.plan` gives the levels.
  """

  carries: int


class RunOptions(NamedTuple):
  """How to run a sequence: options that change memory and speed, never values.

  :func:`jaxrnn.unroll` builds one from its keyword arguments (or takes one as ``options=``) and hands it to the
  path that runs the sequence: the scan of ``step``, or the cell's own :class:`SequencePath`. Every combinator
  forwards it, unchanged, to the runs of its inner cells (``stack`` of ``stack`` included), so an option given at
  the top reaches every scan. A path that cannot honour an option says so (:attr:`SequencePath.honours`):
  ``unroll`` then runs the scan of ``step`` in ``mode="auto"`` and raises in ``mode="sequence"``.

  A new execution option (for instance the settings of a parallel-in-time solver) is a new field here whose
  default means "off"; paths that do not list it in ``honours`` are then never asked to run with it set.

  Fields:
    remat: ``None`` (off), ``True`` (blocks of ``ceil(sqrt(T))`` steps), a block size ``k``, or a
      :class:`RematBudget` (at most ``n`` checkpoints, nested levels): memory-bounded backprop through the scan
      (see :func:`jaxrnn.unroll` and :mod:`jaxrnn.checkpointing`). Only the scan of ``step`` honours it.
    unroll: how many steps one loop iteration runs (``lax.scan``'s ``unroll``; ``True`` unrolls fully), or the
      backend's measured default (``None``: 8 on GPU, 1 elsewhere; ``jaxrnn.sequences.default_unroll()``).
    hoist: run the cell's ``input_transform`` for all steps before the loop (``True``), inside it (``False``), or
      the backend's default (``None``: everywhere but on CPU, where the native loop hoists it at up to four
      examples per step: ``jaxrnn.cells._native_scan.HOIST_MAX_ROWS``).
    kernel: which implementation runs a cell's own sequence path (one of :data:`KERNELS`): ``"xla"`` (the JAX
      path: ``lax.scan``, ``associative_scan``), ``"cudnn"`` (the LSTM through cuDNN, GPU only:
      :mod:`jaxrnn.kernels.cudnn_lstm`), ``"pallas"`` (the linear recurrences of ``min_gru``, ``min_lstm``,
      ``lru``, ``rg_lru``: :mod:`jaxrnn.kernels.pallas_linear_recurrence`), or ``None``: the backend's measured
      default (:mod:`jaxrnn.kernels.choice`; a default kernel is used only where the call fits it). A kernel
      asked for by name runs or raises: a path without it, or a call it does not fit, is an error.
    native: the native CPU loop of ``lstm``, ``gru`` (either reset form), ``simple_rnn`` and ``lstmp``
      (:mod:`jaxrnn.native`): ``None`` runs it where the call fits and a measured rule says it is faster, the
      pure-JAX path elsewhere (a ``custom_jvp``:
      ``jax.grad`` runs the native backward loop, ``jax.jvp`` the pure-JAX path's tangent; higher orders work);
      ``False`` never runs it; ``True`` requires it, backward loop native too (a ``custom_vjp``: no forward-mode
      AD; a ``ValueError`` says why a call does not fit). Params, carry and inputs stored in bfloat16 or float16
      run the loop in float32, the results rounded once to the pure-JAX path's dtypes (which rounds every step:
      the two agree to that dtype's rounding; ``jaxrnn.cells._native_scan.in_float32``), and so do cells with a
      bfloat16 or float16 compute ``dtype`` (float32 results that the pure-JAX path computes with half-precision
      products; forward-mode tangents stay the pure-JAX path's). Paths without a native
      form run as they would with ``None`` in ``mode="auto"``; ``True`` with the scan of ``step`` raises.
    newton: ``None`` (off) or the :class:`ParallelNewton` settings: every scan of ``step`` is replaced by the
      parallel-in-time solver (:mod:`jaxrnn.parallel_newton`). Fused and parallel-scan paths do not honour it,
      so in ``mode="auto"`` the solver runs on the cell's step; a combinator's path runs each inner cell with it
      (a ``stack`` is solved layer by layer; ``mode="step"`` solves all layers' carries as one state).
  """

  remat: Optional[Union[bool, int, RematBudget]] = None
  unroll: Optional[Union[int, bool]] = None
  hoist: Optional[bool] = None
  kernel: Optional[str] = None
  native: Optional[bool] = None
  newton: Optional[ParallelNewton] = None

  def changed_fields(self) -> FrozenSet[str]:
    """The names of the fields that differ from their defaults (``True`` is not ``1``)."""
    return frozenset(f for f, v, d in zip(self._fields, self, RunOptions()) if (type(v), v) != (type(d), d))

  def set_fields(self) -> FrozenSet[str]:
    """The options a path is asked to honour: :meth:`changed_fields`, but for ``unroll=1`` (one step per loop
    iteration), which is what a path without a loop to unroll (a parallel scan, the native loop) does anyway."""
    return self.changed_fields() - ({"unroll"} if (type(self.unroll), self.unroll) == (int, 1) else set())


ALL_OPTIONS: FrozenSet[str] = frozenset(RunOptions._fields)
"""Every run option: what a path honours when it forwards the options to inner runs (``stack``,
``bidirectional``)."""


class SequenceFn(Protocol):
  """``run(params, carry, xs, mask, options) -> (carry, hs)``: a whole-sequence implementation.

  Args:
    params: the cell's parameters.
    carry: the carry at ``t = 0``, leaves ``[*B, ...]``.
    xs: inputs in time-major layout, ``[T, *B, *F]`` (a pytree for cells with several inputs), always running
      forwards (``unroll`` has already reversed the valid part of each sequence for ``reverse=True``).
    mask: ``None`` or a boolean ``[T, *B]`` whose ``True`` entries form a prefix of each sequence. At masked
      steps the carry must stay as it was and ``h`` must be zero.
    options: the :class:`RunOptions` of the run; only the fields in the path's ``honours`` can be set, and a
      path that runs inner cells passes it on to them.

  Returns:
    ``(carry, hs)``: the carry after the last valid step, ``hs: [T, *B, H]``.
  """

  def __call__(self, params: Params, carry: Carry, xs: Any, mask: Optional[Array], options: RunOptions,
               /) -> Tuple[Carry, Array]:
    ...


class PathChoice(NamedTuple):
  """Which path ``mode="auto"`` takes for one call (:attr:`SequencePath.auto`).

  Fields:
    forward: run the cell's sequence path when the run is not differentiated (else the scan of ``step``).
    gradient: run it (and its derivative) when the run is differentiated in reverse mode (``jax.grad``,
      ``jax.vjp``); else the scan of ``step`` and its derivative.
  """

  forward: bool = True
  gradient: bool = True


class AutoRuleFn(Protocol):
  """``auto(backend, num_steps, width) -> PathChoice``: where a sequence path beats the scan of ``step``.

  Args:
    backend: ``jax.default_backend()`` (``"cpu"``, ``"gpu"``, ``"tpu"``).
    num_steps: ``T``.
    width: the carry's elements per step, batch included (``B * H`` for a vector carry ``[B, H]``).

  A cheap rule from measured crossover points (never a timing at run time); see :mod:`jaxrnn.path_choice`.
  """

  def __call__(self, backend: str, num_steps: int, width: int) -> PathChoice:
    ...


class ResetSequenceFn(Protocol):
  """``resets(params, carry, xs, should_reset, reset_carry, mask, options) -> (carry, hs)``: a sequence path with
  carry resets inside it (packed sequences: several documents or episodes concatenated in one row).

  The same function as the scan of ``step`` in which, at every step ``t`` where ``should_reset`` is set, the carry
  entering ``t`` is replaced by ``reset_carry`` before the step reads ``x_t`` (what :func:`jaxrnn.reset_on` does,
  with ``reset_carry = cell.initial_carry(params, B)``): one run over a packed row equals running each segment
  separately, the first from ``carry``, the others from ``reset_carry``. A linear recurrence
  ``h_t = a_t h_{t-1} + b_t`` takes it as data: ``a_t := 0`` and ``b_t := b_t + a_t h_reset`` at the flagged
  steps, so the parallel scan stays parallel.

  Args:
    params, carry, xs, mask, options: as :class:`SequenceFn` (``options``: the fields in the path's ``honours``).
    should_reset: bool ``[T, *B]``, ``True`` at the first step of a new segment; flags at masked (padded) steps
      are ignored.
    reset_carry: the carry entering every flagged step, leaves ``[*B, ...]`` (the carry's structure; learned or
      not, any value).

  Returns:
    ``(carry, hs)`` as :class:`SequenceFn`.
  """

  def __call__(self, params: Params, carry: Carry, xs: Any, should_reset: Array, reset_carry: Carry,
               mask: Optional[Array], options: RunOptions) -> Tuple[Carry, Array]:
    ...


class SequencePath(NamedTuple):
  """A cell's own way to run a whole sequence, and the run options it honours.

  A cell may bring one: an associative (parallel-in-time) scan for linear recurrences, a fused form of the scan of
  ``step`` with a lean derivative (the LSTM's and GRU's), or the layer-by-layer run of a combinator.
  :func:`jaxrnn.unroll` uses it in ``mode="auto"`` and ``mode="sequence"``; it must equal the scan of ``step``
  (values, gradients and random draws).

  Fields:
    run: the implementation (:class:`SequenceFn`).
    honours: the names of the :class:`RunOptions` fields that ``run`` takes effect on. A fused form of the scan
      honours ``hoist``, ``unroll`` and ``kernel`` (not ``remat``: ``unroll`` then runs the scan of ``step``,
      whose remat bounds the memory); a parallel scan has no loop to hoist out of (``hoist``) and ``kernel``; a
      path honours ``kernel`` by running the kernel named or raising (:mod:`jaxrnn.kernels.choice`); a combinator
      that runs its inner cells with :func:`jaxrnn.unroll` honours all (:data:`ALL_OPTIONS`).
    auto: ``None``: ``mode="auto"`` always takes the path (where it honours the options set); or a rule
      (:class:`AutoRuleFn`) that says, by backend, ``T`` and size, whether the path or the scan of ``step`` is the
      faster one, separately for undifferentiated and differentiated runs (:mod:`jaxrnn.path_choice`; the
      parallel scans of ``min_gru``, ``lru``, ... lose to the scan of ``step`` on CPU in some of them).
      ``mode="sequence"`` ignores it.
    resets: optional, the same path with carry resets inside it (:class:`ResetSequenceFn`), honouring the same
      options; :func:`jaxrnn.reset_on` runs it (keeping a parallel scan parallel) where it is declared, and the
      scan of its resetting step where not. ``None``: the path has no resets.
  """

  run: SequenceFn
  honours: FrozenSet[str] = frozenset()
  auto: Optional[AutoRuleFn] = None
  resets: Optional[ResetSequenceFn] = None

  def __call__(self, params: Params, carry: Carry, xs: Any, mask: Optional[Array] = None,
               options: Optional[RunOptions] = None) -> Tuple[Carry, Array]:
    return self.run(params, carry, xs, mask, RunOptions() if options is None else options)


KERNELS: Tuple[str, ...] = ("xla", "cudnn", "pallas")
"""The values of :attr:`RunOptions.kernel` besides ``None``. The scan of ``step`` is ``"xla"`` only."""

FUSED_SCAN: FrozenSet[str] = frozenset({"hoist", "unroll", "kernel"})
"""What a fused form of the scan of ``step`` honours (``kernel``: it runs the kernels it has, and raises for the
others)."""
NATIVE: FrozenSet[str] = FUSED_SCAN | {"native"}
"""What a path that runs the native loop where the call fits, and a fused scan otherwise, honours."""
PARALLEL: FrozenSet[str] = frozenset({"hoist", "kernel"})
"""What a parallel-in-time path honours (it has no loop: ``hoist`` holds trivially; ``kernel`` as for
:data:`FUSED_SCAN`)."""


class CarryJacobianDiagonalFn(Protocol):
  """``carry_jacobian_diagonal(params, carry, x) -> diag``: the diagonal of ``∂ step(params, carry, x)[0] / ∂ carry``.

  Args: as :class:`StepFn` (leading batch axes ``*B`` allowed).

  Returns:
    A pytree with the carry's structure: for every floating leaf, ``∂ c'_k / ∂ c_k`` elementwise (same shape);
    entries of non-floating leaves are ignored. It must be the exact diagonal: the parallel-in-time solver's
    ``jacobian="diagonal"`` uses it instead of computing ``D`` JVPs.
  """

  def __call__(self, params: Params, carry: Carry, x: Array, /) -> Carry:
    ...


class CarryResetsFn(Protocol):
  """``carry_resets(params, x) -> restarts``: where ``step`` restarts the carry instead of reading it.

  Args:
    params: the cell's parameters.
    x: the step's input ``[*B, *F]`` (any leading axes, e.g. ``[T, *B, *F]`` for a whole sequence; a pytree for a
      cell with several inputs).

  Returns:
    bool ``[*B]`` (``x``'s leading axes): ``True`` where ``step(params, carry, x)``'s new carry does not depend on
    ``carry`` (:func:`jaxrnn.reset_on`'s flagged steps, whose carry is replaced before the step reads it), so
    ``∂ carry' / ∂ carry = 0`` there. The parallel-in-time solver uses it as ``A_t = 0`` whatever its Jacobian
    choice (:class:`ParallelNewton`). A step may ignore its carry where this says ``False``, never the reverse.
  """

  def __call__(self, params: Params, x: Any, /) -> Array:
    ...


class Cell(NamedTuple):
  """A recurrent cell: an immutable value holding pure functions.

  Fields:
    init: ``init(key, input_size) -> params`` (:class:`InitFn`).
    initial_carry: ``initial_carry(params, batch_shape=(), dtype=None, *, key=None) -> carry``
      (:class:`InitialCarryFn`).
    step: ``step(params, carry, x) -> (carry, h)`` (:class:`StepFn`). The cell itself is callable with the same
      signature: ``cell(params, carry, x)``.
    input_transform: optional time-parallel part of ``step`` (:class:`InputTransformFn`), hoisted out of the
      scan by ``unroll`` (on GPU/TPU by default; see its ``hoist``).
    step_transformed: ``step`` taking ``input_transform``'s output instead of ``x``; present iff
      ``input_transform`` is.
    sequence: optional whole-sequence path (:class:`SequencePath`).
    input_ndim: how many trailing axes of ``x`` are features (``1`` for vector cells, ``3`` for a 2-D
      convolutional cell over ``[H, W, C]``); ``unroll`` uses it to find the time axis. For a cell whose input is
      a pytree (``reset_on``'s ``(x, should_reset)``), a pytree of ints of the same structure.
    name: a short name for messages and tables (display only: nothing parses it).
    config: declared structure for export (:class:`CellConfig`), or ``None`` for a cell that no exporter knows.
    carry_jacobian_diagonal: optional exact diagonal of ``∂ carry' / ∂ carry`` (:class:`CarryJacobianDiagonalFn`),
      declared by cells whose recurrence is elementwise (there it costs one JVP of ``step`` instead of ``D``).
    map_ndim: how many leading axes of the per-example input ``x: [*S, C]`` are map axes that the carry covers
      too (``len(S)``: 1 or 2 for :func:`jaxrnn.conv_lstm`; ``0``, the default, for vector cells). Such a cell's
      ``initial_carry`` takes ``batch_shape = (*B, *S)`` (:class:`InitialCarryFn`), so one set of params runs on
      maps of any size; :func:`jaxrnn.unroll` (``carry=None``), the combinators and the Flax layers build that
      shape with :func:`carry_batch_shape`. Combinators declare their inner cells' value (``stack``: its first
      layer's, which later layers treat as batch axes if theirs is ``0``).
    carry_resets: optional, where the step restarts its carry instead of reading it (:class:`CarryResetsFn`),
      declared by :func:`jaxrnn.reset_on` (its flags); the parallel-in-time solver zeroes ``A_t`` there, so its
      Picard iterations converge per segment of a packed row.

  Adding a capability (for example an analytic diagonal of ``d carry' / d carry`` that a parallel-in-time solver
  wants) is one typed field here, ``None`` by default, and, if a run option selects the path that uses it, one
  field of :class:`RunOptions`. Combinators need no change: their sequence paths run their inner cells with
  :func:`jaxrnn.unroll` and the caller's options, so the path reads the capability of the cell it actually runs;
  a combinator whose ``step`` changes the math (``zoneout``, ``reset_on``) has no such field unless it declares
  one for its own step.
  """

  init: InitFn
  initial_carry: InitialCarryFn
  step: StepFn
  input_transform: Optional[InputTransformFn] = None
  step_transformed: Optional[StepFn] = None
  sequence: Optional[SequencePath] = None
  input_ndim: Any = 1
  name: str = "cell"
  config: Optional["CellConfig"] = None
  carry_jacobian_diagonal: Optional[CarryJacobianDiagonalFn] = None
  map_ndim: int = 0
  carry_resets: Optional[CarryResetsFn] = None

  def __call__(self, params: Params, carry: Carry, x: Array) -> Tuple[Carry, Array]:
    return self.step(params, carry, x)

  def __repr__(self) -> str:
    return f"Cell(name={self.name!r})"


class CellConfig(NamedTuple):
  """What a cell is, as data: the factory that built it, its hyperparameters and its inner cells.

  Exporters (``jaxrnn.interop.torch.to_torch``) read this instead of the display ``name``.

  Fields:
    factory: the public factory's name (``"lstm"``, ``"stack"``, ``"bidirectional"``, ...).
    kwargs: the hyperparameters that define the math, as ``((name, value), ...)`` with plain Python values
      (sorted by name); an initialiser or a custom activation is recorded as ``"custom"``.
    cells: the inner cells, for combinators (``()`` for a plain cell).
  """

  factory: str
  kwargs: Tuple[Tuple[str, Any], ...] = ()
  cells: Tuple[Cell, ...] = ()

  def get(self, name: str, default: Any = None) -> Any:
    """The hyperparameter ``name`` (``default`` if not recorded)."""
    return dict(self.kwargs).get(name, default)


def carry_batch_shape(cell: Cell, batch_shape: Shape, input_shape: Shape) -> Shape:
  """The ``batch_shape`` to give ``cell.initial_carry`` for inputs ``[*B, *F]``: ``(*B, *F[:cell.map_ndim])``.

  For a vector cell (``map_ndim == 0``) this is ``batch_shape``; for a convolutional cell over maps
  ``F = (*S, C)`` it is ``(*B, *S)``, so that the carry covers the input's map (:attr:`Cell.map_ndim`).

  Args:
    cell: a :class:`Cell`.
    batch_shape: ``*B``.
    input_shape: the per-example input shape ``*F`` (of the first input, for a cell with several).

  Returns:
    The carry's leading shape.

  Raises:
    ValueError: ``input_shape`` has fewer than ``cell.map_ndim + 1`` axes.

  >>> import jaxrnn
  >>> carry_batch_shape(jaxrnn.conv_lstm(4, (3, 3)), (2,), (8, 6, 3)), carry_batch_shape(jaxrnn.lstm(4), (2,), (3,))
  ((2, 8, 6), (2,))
  """
  k = cell.map_ndim
  input_shape = tuple(input_shape)
  if k and len(input_shape) < k + 1:
    raise ValueError(f"the input of {cell.name} must have {k} map axes and a channel axis ([*B, *S, C]), got a "
                     f"per-example input shape {input_shape}")
  return tuple(batch_shape) + input_shape[:k]
