"""Export to StableHLO with ``jax.export``: a cell's step (streaming) and whole-sequence runs, serialized.

The exported function takes the params as an argument (weights are not baked into the program), so one artifact
serves every checkpoint of the same architecture. ``jax.export.deserialize(data).call(...)`` runs it in any
process with JAX (and ``flatbuffers``: ``pip install 'jaxrnn[export]'``), without jaxrnn; other runtimes read the
StableHLO module (``exported.mlir_module()``). Params and carries cross the boundary as flat lists of arrays
(``jax.tree.leaves`` order, e.g. saved with ``numpy.savez``), since jaxrnn's NamedTuples exist only where jaxrnn
is imported; ``jax.tree.unflatten(jax.tree.structure(carry), leaves)`` rebuilds them there.

Shapes may be symbolic (``"b, t, 16"``: any batch size and length), as in ``jax.export.symbolic_shape``; the
sequence length is then a symbolic dimension of the one ``lax.scan`` (no unrolling, no recompilation per length).
The program runs one example under ``jax.vmap`` over the batch axes (the cell contract makes that equal to the
batched call), which is what lets the batch size be symbolic.

Example:

  >>> import jax, jax.numpy as jnp, jaxrnn
  >>> from jaxrnn import export
  >>> cell = jaxrnn.bidirectional(jaxrnn.lstm(4), jaxrnn.gru(4))
  >>> params = cell.init(jax.random.key(0), 3)
  >>> exp = export.export_unroll(cell, params, "b, t, 3", seq_lengths=True)
  >>> data = exp.serialize()                                      # bytes, for a file
  >>> run = jax.export.deserialize(data)
  >>> xs, lengths = jnp.ones((2, 5, 3), jnp.float32), jnp.array([5, 2], jnp.int32)
  >>> carry, hs = run.call(jax.tree.leaves(params), xs, lengths)   # carry: a list of arrays
  >>> bool(jnp.allclose(hs, jaxrnn.unroll(cell, params, None, xs, seq_lengths=lengths)[1], atol=1e-6))
  True
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence, Union

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import _optional
from jaxrnn.types import Cell, RunOptions, carry_batch_shape
from jaxrnn.unroll import unroll

ShapeSpec = Union[str, Sequence[Union[int, str]]]


def _shape(name: str, shape: ShapeSpec, scope: Optional[Any] = None) -> tuple:
  """A concrete or symbolic shape from ``"b, t, 3"``, ``("b", "t", 3)`` or ``(2, 5, 3)``."""
  if isinstance(shape, str):
    return tuple(jax.export.symbolic_shape(shape, scope=scope))
  if not isinstance(shape, (tuple, list)):
    raise TypeError(f"{name} must be a shape: a tuple of ints and dimension names, or a string like 'b, t, 3', got "
                    f"{type(shape).__name__}")
  if any(isinstance(d, str) for d in shape):
    return tuple(jax.export.symbolic_shape(", ".join(str(d) for d in shape), scope=scope))
  return tuple(_checks.positive_int(f"{name}[{i}]", d) for i, d in enumerate(shape))


def _param_specs(params: Any) -> Any:
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), params)


def _check_cell(cell: Any) -> None:
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a jaxrnn.Cell, got {type(cell).__name__}")


def export_step(cell: Cell, params: Any, x_shape: ShapeSpec, *, dtype: Any = jnp.float32,
                platforms: Optional[Sequence[str]] = None) -> jax.export.Exported:
  """``jax.export`` of one step, ``(params, carry, x) -> (carry, h)``, for streaming inference.

  Args:
    cell: the cell.
    params: its params (their shapes and dtypes; the values are an argument of the exported function).
    x_shape: one step's input shape ``[*B, *F]`` (symbolic dimensions allowed, e.g. ``"b, 16"``).
    dtype: the input's dtype (and the carry's: ``initial_carry`` of the params' dtype otherwise).
    platforms: ``jax.export``'s target platforms (``None``: the current backend), e.g. ``("cpu", "cuda")``.

  Returns:
    The ``jax.export.Exported``; ``.call(param_leaves, carry_leaves, x) -> (carry_leaves, h)`` runs it (lists of
    arrays in ``jax.tree.leaves`` order), ``.serialize()`` gives bytes.
  """
  _check_cell(cell)
  shape = _shape("x_shape", x_shape)
  nf = cell.input_ndim if isinstance(cell.input_ndim, int) else None
  if nf is None:
    raise ValueError(f"export_step needs a cell with one input array; {cell.name} has inputs {cell.input_ndim}")
  batch = shape[:len(shape) - nf]
  one = jax.eval_shape(lambda p: cell.initial_carry(p, carry_batch_shape(cell, (), shape[len(batch):]), dtype), params)
  carry_spec = jax.tree.map(lambda a: jax.ShapeDtypeStruct(batch + a.shape, a.dtype), one)
  p_def, c_def = jax.tree.structure(params), jax.tree.structure(carry_spec)

  def step(p, c, x):
    c, h = cell.step(jax.tree.unflatten(p_def, p), jax.tree.unflatten(c_def, c), x)
    return jax.tree.leaves(c), h

  for _ in batch:
    step = jax.vmap(step, in_axes=(None, 0, 0))
  return jax.export.export(jax.jit(step), platforms=platforms)(
      jax.tree.leaves(_param_specs(params)), jax.tree.leaves(carry_spec), jax.ShapeDtypeStruct(shape, dtype))


def export_unroll(cell: Cell, params: Any, xs_shape: ShapeSpec, *, dtype: Any = jnp.float32,
                  seq_lengths: bool = False, reverse: bool = False, time_major: bool = False,
                  options: Optional[RunOptions] = None, mode: str = "auto",
                  platforms: Optional[Sequence[str]] = None) -> jax.export.Exported:
  """``jax.export`` of :func:`jaxrnn.unroll` from the cell's initial carry: ``(params, xs[, seq_lengths]) -> (carry,
  hs)``.

  Args:
    cell: the cell (a ``stack``, ``bidirectional``, dropout-free at inference: no key is passed).
    params: its params (shapes and dtypes; the values are an argument).
    xs_shape: ``[*B, T, *F]`` (``[T, *B, *F]`` with ``time_major``), symbolic dimensions allowed
      (``"b, t, 16"``).
    dtype: the inputs' dtype.
    seq_lengths: whether the exported function takes ``seq_lengths: int32[*B]`` as its third argument.
    reverse, time_major, options, mode: :func:`jaxrnn.unroll`'s arguments, fixed in the exported program
      (``options.native`` must be unset: the native CPU loop cannot be exported).
    platforms: ``jax.export``'s target platforms (``None``: the current backend).

  Returns:
    The ``jax.export.Exported``; ``.call(param_leaves, xs[, lengths])`` gives ``(final_carry_leaves, hs)`` (lists
    of arrays in ``jax.tree.leaves`` order).
  """
  run, shape, batch = _unroll_program(cell, params, xs_shape, seq_lengths, reverse, time_major, options, mode,
                                      "export_unroll")
  args = [jax.tree.leaves(_param_specs(params)), jax.ShapeDtypeStruct(shape, dtype)]
  if seq_lengths:
    args.append(jax.ShapeDtypeStruct(batch, jnp.int32))
  return jax.export.export(jax.jit(run), platforms=platforms)(*args)


def _unroll_program(cell: Cell, params: Any, xs_shape: ShapeSpec, seq_lengths: bool, reverse: bool,
                    time_major: bool, options: Optional[RunOptions], mode: str, what: str, per_example: bool = True):
  """``(run, shape, batch)``: ``run(param_leaves, xs[, lengths]) -> (carry_leaves, hs)`` of :func:`jaxrnn.unroll`
  from the initial carry (with ``per_example``, one example under ``jax.vmap`` per batch axis, so batch sizes may
  be symbolic), and the checked ``xs`` shape and its batch shape."""
  _check_cell(cell)
  shape = _shape("xs_shape", xs_shape)
  seq_lengths = _checks.boolean("seq_lengths", seq_lengths)
  nf = cell.input_ndim if isinstance(cell.input_ndim, int) else None
  if nf is None:
    raise ValueError(f"{what} needs a cell with one input array; {cell.name} has inputs {cell.input_ndim}")
  if len(shape) < nf + 1:
    raise ValueError(f"xs_shape must have a time axis and {nf} feature axis(es), got {shape}")
  batch = shape[1:len(shape) - nf] if time_major else shape[:len(shape) - nf - 1]

  p_def = jax.tree.structure(params)
  # The native CPU loop is a custom call without jax.export's compatibility guarantees: the exported program runs
  # the pure-JAX path (same values).
  options = RunOptions() if options is None else options
  if options.native:
    raise ValueError(f"options.native=True cannot be exported ({what}): the native CPU loop is a custom call that "
                     "cannot be serialized; leave native unset (the exported program runs the pure-JAX path)")
  options = options._replace(native=False)

  def run(p, xs, *lengths):
    carry, hs = unroll(cell, jax.tree.unflatten(p_def, p), None, xs, seq_lengths=lengths[0] if lengths else None,
                       reverse=reverse, time_major=time_major, options=options, mode=mode)
    return jax.tree.leaves(carry), hs

  axis = 1 if time_major else 0  # where each batch axis is, once the ones before it are mapped away
  for _ in (batch if per_example else ()):
    run = jax.vmap(run, in_axes=(None, axis) + ((0,) if seq_lengths else ()), out_axes=(0, axis))
  return run, shape, batch


def to_onnx(cell: Cell, params: Any, xs_shape: Sequence[Union[int, str]], *, dtype: Any = jnp.float32,
            seq_lengths: bool = False, reverse: bool = False, time_major: bool = False,
            options: Optional[RunOptions] = None, mode: str = "auto", opset: int = 21) -> Any:
  """An ONNX model of :func:`jaxrnn.unroll` from the cell's initial carry, with the params as its weights.

  Converted by ``jax2onnx`` (``pip install 'jaxrnn[onnx]'``; see the README for installing it beside the trainer
  without downgrading orbax): the ``lax.scan`` becomes an ONNX ``Scan``/``Loop``, so the model runs sequences of
  any length in ``onnxruntime`` and other ONNX runtimes. The model's inputs are ``xs`` (and ``seq_lengths:
  int32[*B]``); its outputs ``hs`` and then the final carry's leaves (``jax.tree.leaves`` order).

  Args:
    cell: the cell (dropout-free at inference: no key is passed).
    params: its params; their values become the model's initializers.
    xs_shape: ``[*B, T, *F]`` (``[T, *B, *F]`` with ``time_major``); ``T`` may be a name (``(8, "t", 3)``): a
      dynamic ONNX dimension (the batch shape is concrete).
    dtype: the inputs' dtype.
    seq_lengths: whether the model takes ``seq_lengths`` as its second input.
    reverse, time_major, options, mode: :func:`jaxrnn.unroll`'s arguments, fixed in the model.
    opset: the ONNX opset.

  Returns:
    The ``onnx.ModelProto`` (``.SerializeToString()`` for a file or ``onnxruntime.InferenceSession``).

  Raises:
    ImportError: jax2onnx is not installed (the message names the extra).
    ValueError: what the converter cannot express (e.g. the associative scan of ``min_gru``'s sequence path:
      ``mode="step"`` runs the scan of ``step``, which converts), naming the cell and the converter's reason.

  Example (``tests/test_export_onnx.py`` runs it; not a doctest: jax2onnx's first conversion imports all its
  plugins, about half a minute)::

    import jax, numpy as np, jaxrnn, onnxruntime
    from jaxrnn import export
    cell = jaxrnn.lstm(4)
    params = cell.init(jax.random.key(0), 3)
    model = export.to_onnx(cell, params, (2, "t", 3), reverse=True)
    session = onnxruntime.InferenceSession(model.SerializeToString())
    xs = np.ones((2, 5, 3), np.float32)
    hs = session.run(None, {session.get_inputs()[0].name: xs})[0]   # == jaxrnn.unroll(..., reverse=True)[1]
  """
  try:
    import jax2onnx
  except ImportError as e:
    raise _optional.missing("jaxrnn.export.to_onnx", "jax2onnx", "onnx") from e
  # The batched program (no vmap: jax2onnx 0.17 mis-converts a vmapped matmul against unbatched weights), so the
  # batch shape is concrete; the time axis may be a name.
  run, _, batch = _unroll_program(cell, params, tuple(xs_shape), seq_lengths, reverse, time_major, options, mode,
                                  "to_onnx", per_example=False)
  if not all(isinstance(d, int) for d in batch):
    raise ValueError(f"to_onnx needs a concrete batch shape (the initial carry is built for it), got batch "
                     f"dimensions {tuple(str(d) for d in batch)} in xs_shape {tuple(xs_shape)}; the time axis may "
                     f"be a name")
  leaves = [jnp.asarray(a) for a in jax.tree.leaves(params)]

  def model(xs, *lengths):
    carry, hs = run(leaves, xs, *lengths)
    return (hs, *carry)

  names = lambda dims: tuple(str(d) if not isinstance(d, int) else d for d in dims)
  inputs = [jax.ShapeDtypeStruct(names(xs_shape), dtype)]
  if seq_lengths:
    inputs.append(jax.ShapeDtypeStruct(names(batch), jnp.int32))
  # jax2onnx imports every plugin it ships on first use and logs a traceback for the example plugins whose
  # optional packages (dm-pix...) are absent; those are not needed here.
  plugin_log = logging.getLogger("jax2onnx.plugins.plugin_system")
  level = plugin_log.level
  plugin_log.setLevel(logging.ERROR)
  try:
    return jax2onnx.to_onnx(model, inputs, opset=opset)
  except NotImplementedError as e:
    raise ValueError(f"to_onnx cannot convert {cell.name} (mode={mode!r}): {e}. A cell's parallel or fused "
                     f"sequence path may use operations ONNX lacks; mode='step' runs the scan of step") from e
  finally:
    plugin_log.setLevel(level)


__all__ = ["export_step", "export_unroll", "to_onnx"]
