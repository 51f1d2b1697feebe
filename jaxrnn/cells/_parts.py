"""Pieces cell factories share: the checked ``initial_carry``, ``step`` from its two halves, a parallel path.

A cell built from these has one place where ``initial_carry`` checks its arguments (params first, not a PRNG key
or a shape; ``batch_shape``; ``dtype``; ``key``) and one definition of ``step`` as
``step_transformed(params, carry, input_transform(params, x))``, the identity that :class:`jaxrnn.Cell` promises.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import _checks
from jaxrnn import parallel_scan
from jaxrnn import path_choice
from jaxrnn.kernels import choice
from jaxrnn.kernels import pallas_linear_recurrence
from jaxrnn.types import (PARALLEL, AutoRuleFn, CarryJacobianDiagonalFn, Cell, InitFn, InitialCarryFn,
                          InputTransformFn, SequencePath, StepFn)

Shape = Tuple[int, ...]


def initial_carry(build: Callable[[Any, Shape, Any], Any], dtype_of: Callable[[Any], Any]) -> InitialCarryFn:
  """The ``initial_carry`` of a cell without randomness (:class:`jaxrnn.types.InitialCarryFn`).

  Args:
    build: ``build(params, batch_shape, dtype) -> carry``, called with checked arguments.
    dtype_of: ``dtype_of(params)``: the carry's dtype when ``dtype=None`` (the params' dtype).

  Returns:
    ``initial_carry(params, batch_shape=(), dtype=None, *, key=None)``; the key is checked and nothing is drawn
    from it.
  """

  def init_carry(params, batch_shape=(), dtype=None, *, key=None):
    _checks.initial_carry_params(params)
    batch_shape = _checks.batch_shape("batch_shape", batch_shape)
    dt = _checks.dtype("dtype", dtype) or dtype_of(params)
    _checks.optional_key("key", key)  # no randomness: nothing is drawn from it
    return build(params, batch_shape, dt)

  return init_carry


def zeros_carry(carry_type: type[Any], dtype_of: Callable[[Any], Any], **features: Sequence[int]) -> InitialCarryFn:
  """``initial_carry`` returning ``carry_type`` with a zero leaf ``[*B, *features[field]]`` for each field."""
  if set(features) != set(carry_type._fields):
    raise ValueError(f"features must name the fields {carry_type._fields} of {carry_type.__name__}, got "
                     f"{tuple(features)}")

  def build(params, batch_shape, dt):
    del params
    return carry_type(**{f: jnp.zeros(batch_shape + tuple(s), dt) for f, s in features.items()})

  return initial_carry(build, dtype_of)


def step_of(input_transform: InputTransformFn, step_transformed: StepFn) -> StepFn:
  """``step(params, carry, x) = step_transformed(params, carry, input_transform(params, x))``."""

  def step(params, carry, x):
    return step_transformed(params, carry, input_transform(params, x))

  return step


def transformed_cell(init: InitFn, initial_carry: InitialCarryFn, input_transform: InputTransformFn,
                     step_transformed: StepFn, *, elementwise: bool = False, **fields: Any) -> Cell:
  """The :class:`jaxrnn.Cell` of a cell given as its two halves; ``step`` is :func:`step_of` them.

  Args:
    init, initial_carry, input_transform, step_transformed: the cell's functions.
    elementwise: the recurrence is elementwise (a diagonal recurrent matrix): the cell declares
      ``carry_jacobian_diagonal`` (:func:`elementwise_carry_diagonal` of its ``step``).
    **fields: the Cell's other fields (``name``, ``config``, ``sequence``, ...).
  """
  step = step_of(input_transform, step_transformed)
  if elementwise:
    fields["carry_jacobian_diagonal"] = elementwise_carry_diagonal(step)
  return Cell(init=init, initial_carry=initial_carry, step=step, input_transform=input_transform,
              step_transformed=step_transformed, **fields)


def parallel_path(input_transform: InputTransformFn, check: Callable[[Any, Any, Any], Any],
                  run: Callable[..., Any], name: str, kernels: Tuple[str, ...], *,
                  auto: Optional[AutoRuleFn] = path_choice.LINEAR_RECURRENCE) -> SequencePath:
  """The :class:`jaxrnn.SequencePath` of a parallel-in-time cell (it honours :data:`jaxrnn.types.PARALLEL`).

  Args:
    input_transform: the cell's, applied once to the whole ``xs: [T, *B, *F]`` (or a pytree of such, e.g. with
      reset flags ``[T, *B]``) with masked steps zeroed (so that padding is never read).
    check: ``check(params, carry, xs) -> dtype``: checks the arguments, returns the carry's dtype (``u``'s).
    run: ``run(params, carry, u, mask, kernel, resets) -> (carry, hs)``: the scan over the transformed inputs
      ``u: [T, *B, ...]`` (floating leaves cast to the carry's dtype, others such as bool flags as they are) with
      the kernel of its linear recurrence (``"xla"`` or ``"pallas"``, see
      :func:`jaxrnn.parallel_scan.linear_recurrence`); ``resets`` is ``None`` or :class:`Resets` (flags already
      cleared at masked steps, the reset carry checked and cast to the carry's dtype).
    name: the cell's name, for messages.
    kernels: the kernels ``run`` has: ``("xla", "pallas")`` where it is
      :func:`jaxrnn.parallel_scan.linear_recurrence`, else ``("xla",)``; ``options.kernel`` chooses among them
      (:mod:`jaxrnn.kernels.choice`, path ``"linear_recurrence"``).
    auto: where ``mode="auto"`` takes the path (:attr:`jaxrnn.SequencePath.auto`): by default the measured rule
      of the associative scans, :data:`jaxrnn.path_choice.LINEAR_RECURRENCE`.
  """

  def sequence(params, carry, xs, mask, options, resets=None):
    cdt = check(params, carry, xs)  # no loop: hoist holds trivially
    kernel = choice.resolve(options.kernel, "linear_recurrence", name, kernels,
                            lambda k: pallas_linear_recurrence.misfit())
    u = input_transform(params, jax.tree.map(lambda x: parallel_scan.zero_masked(x, mask), xs))
    u = jax.tree.map(lambda a: a.astype(cdt) if jnp.issubdtype(a.dtype, jnp.floating) else a, u)
    return run(params, carry, u, mask, kernel, resets)

  def sequence_resets(params, carry, xs, should_reset, reset_carry, mask, options):
    check(params, carry, xs)
    if jax.tree.structure(reset_carry) != jax.tree.structure(carry):
      raise ValueError(f"reset_carry of {name} must have the carry's structure {jax.tree.structure(carry)}, got "
                       f"{jax.tree.structure(reset_carry)}")
    check(params, reset_carry, xs)
    flags = should_reset_flags(should_reset, jax.tree.leaves(xs)[0].shape, carry, name)
    if mask is not None:
      if mask.shape != flags.shape:
        raise ValueError(f"should_reset of {name} must have the mask's shape [T, *B] {mask.shape}, got {flags.shape}")
      flags = flags & mask
    reset_carry = jax.tree.map(lambda a, c: a.astype(c.dtype), reset_carry, carry)
    return sequence(params, carry, xs, mask, options, Resets(flags, reset_carry))

  return SequencePath(sequence, PARALLEL, auto=auto, resets=sequence_resets)


class Resets(NamedTuple):
  """Carry resets inside a parallel path (:class:`jaxrnn.ResetSequenceFn`), as its ``run`` receives them."""

  flags: jax.Array  # bool [T, *B]: the carry entering t is `carry` below (False at masked steps)
  carry: Any  # the carry entering every flagged step, leaves [*B, ...] in the carry's dtype


def should_reset_flags(should_reset: Any, xs_shape: Shape, carry: Any, owner: str) -> jax.Array:
  """Checks the reset flags ``[T, *B]`` of a sequence path (bool, or numbers: nonzero means True) against the
  shape of a leaf of ``xs`` (``[T, *B, ...]``) and the carry (leaves ``[*B, ...]``); returns them as bool."""
  flags = jnp.asarray(should_reset)
  if flags.dtype != jnp.bool_:
    if not jnp.issubdtype(flags.dtype, jnp.number):
      raise TypeError(f"should_reset of {owner} must be bool or numeric, got dtype {flags.dtype}")
    flags = flags != 0
  batch = tuple(flags.shape[1:])
  if (flags.ndim < 1 or tuple(xs_shape[:flags.ndim]) != tuple(flags.shape)
      or any(tuple(a.shape[:len(batch)]) != batch for a in jax.tree.leaves(carry))):
    raise ValueError(f"should_reset of {owner} must have shape [T, *B] (xs is {tuple(xs_shape)}, the carry "
                     f"{[tuple(a.shape) for a in jax.tree.leaves(carry)]}), got {flags.shape}")
  return flags


def elementwise_carry_diagonal(step: StepFn) -> CarryJacobianDiagonalFn:
  """The ``carry_jacobian_diagonal`` of a cell whose recurrence is elementwise (:class:`jaxrnn.Cell`).

  One JVP of ``step`` per floating carry leaf, with a tangent of ones on that leaf (zeros elsewhere); that leaf's
  output tangent is the diagonal of ``∂ leaf' / ∂ leaf`` when element ``k`` of each new leaf reads the carry only
  at element ``k`` of each leaf (a diagonal recurrent matrix: minGRU, RG-LRU, IndRNN, ParaGRU; ParaLSTM's
  ``(h, c)`` couples ``h_k`` and ``c_k``, which this allows). Derivatives from JAX, not from formulas.
  """

  def diagonal(params, carry, x):
    leaves, treedef = jax.tree.flatten(carry)
    floating = [bool(jnp.issubdtype(a.dtype, jnp.floating)) for a in leaves]
    zero = lambda a, f: jnp.zeros_like(a) if f else np.zeros(a.shape, jax.dtypes.float0)
    out = []
    for i, (leaf, f) in enumerate(zip(leaves, floating)):
      if not f:
        out.append(jnp.zeros_like(leaf))
        continue
      tangent = [jnp.ones_like(a) if j == i else zero(a, g) for j, (a, g) in enumerate(zip(leaves, floating))]
      _, t_new = jax.jvp(lambda c: step(params, c, x)[0], (carry,), (jax.tree.unflatten(treedef, tangent),))
      out.append(treedef.flatten_up_to(t_new)[i])
    return jax.tree.unflatten(treedef, out)

  return diagonal
