"""The cell contract: a recurrent cell is an immutable value of pure functions.

A :class:`Cell` is to a recurrent network what ``optax.GradientTransformation`` is to an optimiser: a
``NamedTuple`` of pure functions built by a snake_case factory (``jaxrnn.lstm(hidden_size, ...)``) that closes
over the hyperparameters. Arrays live in ``params`` and ``carry`` (NamedTuples with named fields), never in the
cell.

Shapes below use ``*B`` for any number of leading batch axes (including none), ``*F`` for the cell's per-example
input feature shape (``[input_size]`` for every vector cell; ``cell.input_ndim`` says how many axes it has) and
``T`` for time.

Every function honours one order: ``(carry, h)`` out of every step and every unroll, as ``jax.lax.scan`` does.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Protocol, Sequence, Tuple, Union

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

  def __call__(self, key: PRNGKey, input_size: InputSize) -> Params:
    ...


class InitialCarryFn(Protocol):
  """``initial_carry(params, batch_shape=(), dtype=None) -> carry``.

  Args:
    params: the cell's parameters (a learned initial carry reads them; most cells only read sizes from them).
    batch_shape: the leading batch shape ``*B`` of the carry; ``()`` for one example.
    dtype: the carry's dtype; ``None`` means the dtype of the parameters.

  Returns:
    The carry at ``t = 0``, a NamedTuple whose leaves have shape ``[*B, ...]``.
  """

  def __call__(self, params: Params, batch_shape: Shape = (), dtype: Optional[DType] = None) -> Carry:
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

  def __call__(self, params: Params, carry: Carry, x: Array) -> Tuple[Carry, Array]:
    ...


class InputTransformFn(Protocol):
  """``input_transform(params, xs) -> us``: the part of ``step`` that does not depend on the carry.

  It is applied to a whole sequence at once (``xs: [T, *B, *F]`` or any leading axes), usually one large matrix
  product, so that the scan body only does the recurrent part. For every cell that has it,
  ``step(p, c, x) == step_transformed(p, c, input_transform(p, x))``.
  """

  def __call__(self, params: Params, xs: Array) -> Array:
    ...


class SequenceFn(Protocol):
  """``sequence(params, carry, xs, mask) -> (carry, hs)``: a whole-sequence implementation.

  A cell may bring its own way to run a whole sequence: an associative (parallel-in-time) scan for linear
  recurrences, or a fused layer with a hand-written backward pass. ``jaxrnn.unroll`` uses it in ``mode="auto"``
  and ``mode="sequence"``; it must equal the scan of ``step``.

  Args:
    params: the cell's parameters.
    carry: the carry at ``t = 0``, leaves ``[*B, ...]``.
    xs: inputs in time-major layout, ``[T, *B, *F]``, always running forwards (``unroll`` has already reversed
      the valid part of each sequence for ``reverse=True``).
    mask: ``None`` or a boolean ``[T, *B]`` whose ``True`` entries form a prefix of each sequence. At masked
      steps the carry must stay as it was and ``h`` must be zero.

  Returns:
    ``(carry, hs)``: the carry after the last valid step, ``hs: [T, *B, H]``.
  """

  def __call__(self, params: Params, carry: Carry, xs: Array, mask: Optional[Array]) -> Tuple[Carry, Array]:
    ...


class Cell(NamedTuple):
  """A recurrent cell: an immutable value holding pure functions.

  Fields:
    init: ``init(key, input_size) -> params`` (:class:`InitFn`).
    initial_carry: ``initial_carry(params, batch_shape=(), dtype=None) -> carry`` (:class:`InitialCarryFn`).
    step: ``step(params, carry, x) -> (carry, h)`` (:class:`StepFn`). The cell itself is callable with the same
      signature: ``cell(params, carry, x)``.
    input_transform: optional time-parallel part of ``step`` (:class:`InputTransformFn`), hoisted out of the
      scan by ``unroll`` (on GPU/TPU by default; see its ``hoist``).
    step_transformed: ``step`` taking ``input_transform``'s output instead of ``x``; present iff
      ``input_transform`` is.
    sequence: optional whole-sequence implementation (:class:`SequenceFn`).
    input_ndim: how many trailing axes of ``x`` are features (``1`` for vector cells, ``3`` for a 2-D
      convolutional cell over ``[H, W, C]``); ``unroll`` uses it to find the time axis.
    name: a short name for messages and tables.
  """

  init: InitFn
  initial_carry: InitialCarryFn
  step: StepFn
  input_transform: Optional[InputTransformFn] = None
  step_transformed: Optional[StepFn] = None
  sequence: Optional[SequenceFn] = None
  input_ndim: int = 1
  name: str = "cell"

  def __call__(self, params: Params, carry: Carry, x: Array) -> Tuple[Carry, Array]:
    return self.step(params, carry, x)

  def __repr__(self) -> str:
    return f"Cell(name={self.name!r})"
