"""Dense layers before and after a cell: ``with_input_transform`` and ``with_projection``."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union, Unpack

import jax

from jaxrnn import _checks
from jaxrnn.cells import _dense
from jaxrnn.cells import _parts
from jaxrnn.cells.options import DenseOptions, Options, resolve
from jaxrnn.combinators import _util
from jaxrnn.combinators import reset
from jaxrnn.types import ALL_OPTIONS, Cell, ResetSequenceFn, SequencePath


class DenseParams(NamedTuple):
  """A dense layer ``y = act(x w + b)``."""

  w: jax.Array  # [F_in, F_out]
  b: Optional[jax.Array]  # [F_out], None if use_bias=False


class ProjectedParams(NamedTuple):
  """Parameters of :func:`with_projection` and :func:`with_input_transform`."""

  cell: Any  # the wrapped cell's params
  dense: DenseParams  # the dense layer after (projection) or before (input transform) the cell


def _dense_layer(key, size_in, size_out, use_bias, opts: Options):
  k_w, k_b = jax.random.split(key)
  w = opts.kernel_init(k_w, (size_in, size_out), opts.param_dtype)
  b = opts.bias_init(k_b, (size_out,), opts.param_dtype) if use_bias else None
  return DenseParams(w=w, b=b)


def _check_layer(factory, cell, size_name, size, activation, options):
  """``(size, act, opts)``: the checked arguments of a dense layer beside ``cell``."""
  _checks.cell("cell", cell)
  return (_checks.positive_int(size_name, size), _checks.activation("activation", activation, _dense.ACTIVATIONS),
          resolve(factory, options, DenseOptions))


def _apply(p: DenseParams, x, act, dtype, precision):
  x = _checks.step_input("x", x, (p.w.shape[0],))
  return act(_dense.project(x, p.w, p.b, dtype, precision))


def with_projection(
    cell: Cell,
    output_size: int,
    *,
    activation: Union[str, Callable] = "identity",
    use_bias: bool = True,
    name: Optional[str] = None,
    **options: Unpack[DenseOptions],
) -> Cell:
  """A dense layer on the cell's output: ``y_t = act(h_t W + b)``, ``W: [H, P]``.

  The carry is the cell's (the recurrence still sees ``h``, unlike the LSTMP projection of Sak et al. 2014,
  which projects the recurrent state). The cell's sequence path is kept (with its resets, where it declares them:
  :func:`jaxrnn.reset_on` of the wrapper keeps a parallel scan parallel); padded outputs stay zeros.

  Args:
    cell: the wrapped cell, output ``[*B, H]``.
    output_size: ``P``.
    activation: applied after the affine map (``"identity"``, ``"tanh"``, ``"relu"`` or a callable).
    use_bias: whether the layer has ``b``.
    name: the cell's name.
    **options: :class:`jaxrnn.cells.options.DenseOptions` of the layer: ``kernel_init`` and ``bias_init`` draw
      ``W`` and ``b``; ``dtype`` (of the product), ``param_dtype`` (of ``W`` and ``b``), ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``ProjectedParams(cell, dense)``; the output is ``[*B, P]`` in the dtype of
    the cell's output.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.with_projection(jaxrnn.lstm(4), 2)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> params.dense.w.shape, cell(params, cell.initial_carry(params), jnp.ones(3))[1].shape
    ((4, 2), (2,))
  """
  output_size, act, opts = _check_layer("with_projection", cell, "output_size", output_size, activation, options)
  name = name or f"with_projection({cell.name})"

  def init(key, input_size):
    _checks.key("key", key)
    k_c, k_d = jax.random.split(key)
    p = cell.init(k_c, input_size)
    hidden = _util.output_shape(cell, p, input_size)
    if len(hidden) != 1:
      raise ValueError(f"with_projection needs a cell with vector outputs, got output shape {hidden}")
    return ProjectedParams(cell=p, dense=_dense_layer(k_d, hidden[0], output_size, use_bias, opts))

  initial_carry = _util.inner_initial_carry(cell)

  def project(p, h):
    return _apply(p, h, act, opts.dtype, opts.precision).astype(h.dtype)

  def step(params, carry, x):
    carry, h = cell.step(params.cell, carry, x)
    return carry, project(params.dense, h)

  def sequence(params, carry, xs, mask, options):
    carry, hs = _util.unroll_inner(cell, params.cell, carry, xs, mask, options)
    return carry, _util.zero_padded(project(params.dense, hs), mask)

  resets: Optional[ResetSequenceFn] = None
  if reset.declared_resets(cell):
    def sequence_resets(params, carry, xs, should_reset, reset_carry, mask, options):
      carry, hs = reset.unroll_with_resets(cell, params.cell, carry, xs, should_reset, reset_carry, mask, options)
      return carry, _util.zero_padded(project(params.dense, hs), mask)

    resets = sequence_resets

  return Cell(init=init, initial_carry=initial_carry, step=step,
              sequence=SequencePath(sequence, ALL_OPTIONS, resets=resets), input_ndim=cell.input_ndim, name=name,
              map_ndim=cell.map_ndim)


def with_input_transform(
    cell: Cell,
    features: int,
    *,
    activation: Union[str, Callable] = "identity",
    use_bias: bool = True,
    name: Optional[str] = None,
    **options: Unpack[DenseOptions],
) -> Cell:
  """A dense layer on the input before the cell: the cell reads ``x'_t = act(x_t W + b)``, ``W: [F, features]``.

  The dense layer does not depend on the carry, so it is the new cell's ``input_transform``: ``jaxrnn.unroll``
  applies it to all steps at once outside the loop (followed by the wrapped cell's own ``input_transform``,
  if it has one). The cell's sequence path is kept (with its resets, where it declares them).

  Args:
    cell: the wrapped cell, reading vectors of size ``features``.
    features: the width of ``x'``.
    activation, use_bias: of the dense layer, as in :func:`with_projection`.
    name: the cell's name.
    **options: :class:`jaxrnn.cells.options.DenseOptions` of the dense layer, as in :func:`with_projection`.

  Returns:
    A :class:`jaxrnn.Cell` with ``ProjectedParams(cell, dense)``.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.with_input_transform(jaxrnn.gru(4), 6, activation="relu")
    >>> params = cell.init(jax.random.key(0), 3)
    >>> params.dense.w.shape, params.cell.w_i.shape
    ((3, 6), (6, 12))
  """
  if _checks.cell("cell", cell).input_ndim != 1:
    raise ValueError(f"with_input_transform needs a cell with vector inputs, got input_ndim {cell.input_ndim}")
  features, act, opts = _check_layer("with_input_transform", cell, "features", features, activation, options)
  name = name or f"with_input_transform({cell.name})"

  def init(key, input_size):
    _checks.key("key", key)
    input_size = _checks.positive_int("input_size", input_size)
    k_c, k_d = jax.random.split(key)
    return ProjectedParams(cell=cell.init(k_c, features),
                           dense=_dense_layer(k_d, input_size, features, use_bias, opts))

  initial_carry = _util.inner_initial_carry(cell)

  def dense(params, xs):
    return _apply(params.dense, xs, act, opts.dtype, opts.precision)

  transform, transformed = cell.input_transform, cell.step_transformed
  if transform is not None and transformed is not None:
    def input_transform(params, xs):
      return transform(params.cell, dense(params, xs))

    def step_transformed(params, carry, u):
      return transformed(params.cell, carry, u)
  else:
    input_transform = dense

    def step_transformed(params, carry, u):
      return cell.step(params.cell, carry, u)

  step = _parts.step_of(input_transform, step_transformed)

  def sequence_dense(params, carry, xs, mask, options):
    return _util.unroll_inner(cell, params.cell, carry, dense(params, xs), mask, options)

  resets: Optional[ResetSequenceFn] = None
  if reset.declared_resets(cell):
    def dense_resets(params, carry, xs, should_reset, reset_carry, mask, options):
      return reset.unroll_with_resets(cell, params.cell, carry, dense(params, xs), should_reset, reset_carry, mask,
                                      options)

    resets = dense_resets

  return Cell(init=init, initial_carry=initial_carry, step=step, input_transform=input_transform,
              step_transformed=step_transformed, sequence=SequencePath(sequence_dense, ALL_OPTIONS, resets=resets),
              name=name)
