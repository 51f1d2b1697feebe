"""Pieces shared by the dense cells: fused gate kernels, the hoisted input projection, dtype policy.

Dtype policy of every dense cell (the same pair as Flax's ``dtype``/``param_dtype``):
  * params are stored in ``param_dtype`` (default float32);
  * matrix products run in ``dtype`` (``None``: the promoted dtype of inputs and params), so float32 params can
    compute in bfloat16;
  * gate nonlinearities and the state update run in the carry's dtype, and the new carry keeps the carry's dtype
    exactly (no scan carry-type errors, no recompiles); ``h`` has the carry's dtype.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.cells import _parts
from jaxrnn.cells.options import Options
from jaxrnn.types import Cell, CellConfig

ACTIVATIONS = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "hard_sigmoid": jax.nn.hard_sigmoid,
    "hard_tanh": jax.nn.hard_tanh,
    "identity": lambda x: x,
}


def compute_dtype(dtype: Optional[Any], *arrays: Any) -> Any:
  """``dtype`` if given, else the promoted dtype of the given arrays (``None`` entries are skipped)."""
  if dtype is not None:
    return dtype
  return jnp.result_type(*[a.dtype for a in arrays if a is not None])


def init_blocks(key: jax.Array, init: Callable, rows: int, cols: int, n_blocks: int, dtype: Any) -> jax.Array:
  """``[rows, n_blocks * cols]``: ``n_blocks`` independently initialised ``[rows, cols]`` blocks side by side.

  Per-block initialisation keeps, e.g., each gate's recurrent matrix orthogonal (as Flax and Keras do).
  """
  keys = jax.random.split(key, n_blocks)
  # Initialisers that factorise (orthogonal) have no low-precision kernels: draw in float32, then cast.
  draw = dtype if jnp.finfo(dtype).bits >= 32 else jnp.float32
  return jnp.concatenate([init(k, (rows, cols), draw) for k in keys], axis=1).astype(dtype)


def init_kernels(key: jax.Array, input_size: int, hidden_size: int, n_blocks: int, *, kernel_init: Callable,
                 recurrent_kernel_init: Callable, param_dtype: Any) -> Tuple[jax.Array, jax.Array]:
  """Input kernel ``[F, n*H]`` and recurrent kernel ``[H, n*H]``."""
  k_i, k_h = jax.random.split(key)
  w_i = init_blocks(k_i, kernel_init, input_size, hidden_size, n_blocks, param_dtype)
  w_h = init_blocks(k_h, recurrent_kernel_init, hidden_size, hidden_size, n_blocks, param_dtype)
  return w_i, w_h


def project(xs: jax.Array, w: jax.Array, b: Optional[jax.Array], dtype: Optional[Any], precision: Any) -> jax.Array:
  """``xs @ w + b`` in the compute dtype, for any leading axes of ``xs``."""
  cd = compute_dtype(dtype, xs, w)
  u = jnp.matmul(xs.astype(cd), w.astype(cd), precision=precision)
  return add_bias(u, b)


def add_bias(u: jax.Array, b: Optional[jax.Array]) -> jax.Array:
  """``u + b`` for ``u: [..., N]`` and ``b: [N]`` (or ``None``), in ``u``'s dtype, without rank promotion."""
  if b is None:
    return u
  return u + b.astype(u.dtype).reshape((1,) * (u.ndim - b.ndim) + b.shape)


def recurrent(h: jax.Array, w: jax.Array, dtype: Optional[Any], precision: Any) -> jax.Array:
  """``h @ w`` in the compute dtype."""
  cd = compute_dtype(dtype, w)
  return jnp.matmul(h.astype(cd), w.astype(cd), precision=precision)


def check_init_args(key: Any, input_size: Any) -> int:
  _checks.key("key", key)
  return _checks.positive_int("input_size", input_size)


def check_carry(carry: Any, carry_type: type[Any], batch_shape: Sequence[int],
                hidden_size: Union[int, Mapping[str, int]]) -> None:
  """Checks a carry of ``carry_type`` with leaves ``[*B, hidden_size]`` (a mapping: each field's own width)."""
  _checks.carry_type("carry", carry, carry_type)
  for field in carry_type._fields:
    width = hidden_size[field] if isinstance(hidden_size, Mapping) else hidden_size
    _checks.carry_leaf(f"carry.{field}", getattr(carry, field), batch_shape, (width,))


def check_layer_carries(carry: Any, num_layers: int, carry_type: type[Any], batch_shape: Sequence[int],
                        hidden_sizes: Sequence[int]) -> None:
  """Checks a carry that is a tuple of ``num_layers`` per-layer NamedTuples with leaves ``[*B, H_l]``."""
  if not isinstance(carry, tuple) or isinstance(carry, carry_type) or len(carry) != num_layers:
    raise TypeError(
        f"carry must be a tuple of {num_layers} {carry_type.__name__}{carry_type._fields} (one per layer; build it "
        f"with cell.initial_carry), got {type(carry).__name__}"
        + (f" of length {len(carry)}" if isinstance(carry, tuple) else ""))
  for l, (c, H) in enumerate(zip(carry, hidden_sizes)):
    _checks.carry_type(f"carry[{l}]", c, carry_type)
    for field in carry_type._fields:
      _checks.carry_leaf(f"carry[{l}].{field}", getattr(c, field), batch_shape, (H,))


def check_transformed(name: str, u: jax.Array, width: int) -> jax.Array:
  return _checks.step_input(name, u, (width,))


class Hyper(NamedTuple):
  """The checked hyperparameters that every dense cell factory takes (:func:`hyper`)."""

  hidden_size: int
  act: Callable  # a factory without an activation argument gets one that raises (_not_taken)
  gate_act: Callable


def _not_taken(name: str) -> Callable:
  """The activation of a factory that takes no ``name`` argument: calling it is a bug in that factory."""

  def not_taken(*args: Any) -> Any:
    raise TypeError(f"this cell takes no {name} argument, but its code called one")

  return not_taken


def hyper(hidden_size: Any, activation: Any = None, gate_activation: Any = None, *,
          size_name: str = "hidden_size") -> Hyper:
  """Checks ``hidden_size`` (named ``size_name`` in errors) and the activations (names or callables)."""
  size = _checks.positive_int(size_name, hidden_size)
  act = _not_taken("activation") if activation is None else _checks.activation("activation", activation,
                                                                                 ACTIVATIONS)
  gate_act = (_not_taken("gate_activation") if gate_activation is None
              else _checks.activation("gate_activation", gate_activation, ACTIVATIONS))
  return Hyper(size, act, gate_act)


def forget_bias(value: Optional[float], use_bias: bool, *, default: float = 1.0,
                forget_gate: Optional[bool] = None) -> float:
  """The forget bias added at initialisation: ``value``, or ``default`` if ``None`` (0.0 without a bias).

  ``forget_gate``: ``None`` for a cell that always has one; a variant's flag otherwise (without a forget gate the
  default is 0.0 too). A non-zero value without a bias (or gate) raises ``ValueError``.
  """
  possible = use_bias and forget_gate is not False
  if value is None:
    return default if possible else 0.0
  if value != 0.0 and not possible:
    if forget_gate is None:
      raise ValueError(f"forget_bias={value} needs a bias, but use_bias=False")
    raise ValueError(f"forget_bias={value} needs a bias and a forget gate, got use_bias={use_bias}, "
                     f"forget_gate={forget_gate}")
  return value


class DenseParts(NamedTuple):
  """What a dense gated cell shares with the others (:func:`dense_parts`); its own part is ``step_transformed``."""

  init: Callable  # init(key, input_size) -> params
  initial_carry: Callable  # zeros of the carry's fields
  input_transform: Callable  # xs @ w_i + b (checks the params first)
  check_params: Callable  # check_params(params): the cell's own params type and kernel width, else a clear error
  check_step: Callable  # check_step(params, carry, u) -> u: checks params, u [*B, nH] and the carry's leaves

  def cell(self, step_transformed: Callable, **fields: Any) -> Cell:
    """The cell of these parts and its own ``step_transformed`` (:func:`jaxrnn.cells._parts.transformed_cell`)."""
    return _parts.transformed_cell(self.init, self.initial_carry, self.input_transform, step_transformed, **fields)


def dense_parts(hidden_size: int, n_blocks: int, params_type: type[Any], carry_type: type[Any], options: Options, *,
                use_bias: bool, recurrent: bool = True, recurrent_rows: Optional[int] = None,
                forget_block: Optional[int] = None, forget_bias: float = 0.0, extra_keys: int = 0,
                init_extra: Optional[Callable] = None, carry_features: Optional[dict] = None,
                init: Optional[Callable] = None) -> DenseParts:
  """The shared parts of a cell whose gates are blocks of one fused projection.

  Params ``params_type(w_i: [F, nH], w_h: [R, nH], b: [nH] or None, **extra)`` (``R = recurrent_rows``, default
  ``H``); with ``recurrent=False`` the gates read only ``x_t`` and the params are ``(w: [F, nH], b)`` (minGRU,
  minLSTM). The carry is ``carry_type`` with leaves ``[*B, *carry_features[field]]`` (default ``[*B, H]``).

  Args:
    hidden_size: ``H``; ``n_blocks``: ``n``, the number of ``H``-wide gate blocks.
    options: the factory's resolved :class:`jaxrnn.cells.options.Options`.
    forget_block: the block of ``b`` that gets ``forget_bias`` added at initialisation (``None``: none).
    extra_keys, init_extra: ``init`` splits its key into ``2 + extra_keys`` (kernels, bias, extra) and adds the
      fields ``init_extra(extra_keys, input_size) -> dict`` (e.g. a recurrent bias, peepholes).
    init: a cell whose params are drawn otherwise passes its own ``init``.
  """
  H = hidden_size
  kernel_init, recurrent_kernel_init, bias_init, dtype, param_dtype, precision = options
  features = carry_features or {f: (H,) for f in carry_type._fields}
  width = n_blocks * H

  def default_init(key, input_size):
    input_size = check_init_args(key, input_size)
    k_w, k_b, *k_extra = jax.random.split(key, 2 + extra_keys)
    fields: dict = {}
    if recurrent:
      w_i, w_h = init_kernels(k_w, input_size, H, n_blocks, kernel_init=kernel_init,
                              recurrent_kernel_init=recurrent_kernel_init, param_dtype=param_dtype)
      fields.update(w_i=w_i, w_h=w_h)
    else:
      fields.update(w=init_blocks(k_w, kernel_init, input_size, H, n_blocks, param_dtype))
    b = None
    if use_bias:
      b = bias_init(k_b, (width,), param_dtype)
      if forget_block is not None:
        b = b.at[forget_block * H:(forget_block + 1) * H].add(forget_bias)
    fields.update(b=b, **(init_extra(k_extra, input_size) if init_extra else {}))
    return params_type(**fields)

  def check_params(params):
    _checks.params_type("params", params, params_type)
    if recurrent:
      _checks.param_shape("params.w_h", params.w_h, (recurrent_rows or H, width))
    else:
      _checks.param_shape("params.w", params.w, (params.w.shape[0], width))

  def input_transform(params, xs):
    check_params(params)
    w = params.w_i if recurrent else params.w
    xs = _checks.step_input("x", xs, (w.shape[0],))
    return project(xs, w, params.b, dtype, precision)

  def check_step(params, carry, u):
    check_params(params)
    u = check_transformed("input_transform(x)", u, width)
    _checks.carry_type("carry", carry, carry_type)
    for field, shape in features.items():
      _checks.carry_leaf(f"carry.{field}", getattr(carry, field), u.shape[:-1], shape)
    return u

  dtype_of = (lambda p: p.w_h.dtype) if recurrent else (lambda p: p.w.dtype)
  initial_carry = _parts.zeros_carry(carry_type, dtype_of, **features)
  return DenseParts(init=init or default_init, initial_carry=initial_carry, input_transform=input_transform,
                    check_params=check_params, check_step=check_step)


def config(factory: str, **kwargs: Any) -> CellConfig:
  """The :class:`jaxrnn.CellConfig` of a cell built by ``factory``: its math-defining hyperparameters.

  Sorted by name; a callable (a custom activation) is recorded as ``"custom"``, so that an exporter refuses it
  instead of guessing what it computes.
  """
  return CellConfig(factory, tuple(sorted((k, "custom" if callable(v) else v) for k, v in kwargs.items())))
