"""Pieces shared by the dense cells: fused gate kernels, the hoisted input projection, dtype policy.

Dtype policy of every dense cell (the same pair as Flax's ``dtype``/``param_dtype``):
  * params are stored in ``param_dtype`` (default float32);
  * matrix products run in ``dtype`` (``None``: the promoted dtype of inputs and params), so float32 params can
    compute in bfloat16;
  * gate nonlinearities and the state update run in the carry's dtype, and the new carry keeps the carry's dtype
    exactly (no scan carry-type errors, no recompiles); ``h`` has the carry's dtype.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.types import CellConfig

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


def check_carry(carry: Any, carry_type: type, batch_shape: Sequence[int], hidden_size: int) -> None:
  _checks.carry_type("carry", carry, carry_type)
  for field in carry_type._fields:
    _checks.carry_leaf(f"carry.{field}", getattr(carry, field), batch_shape, (hidden_size,))


def check_layer_carries(carry: Any, num_layers: int, carry_type: type, batch_shape: Sequence[int],
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


class InputOnlyParts(NamedTuple):
  """``init``, ``initial_carry`` and ``input_transform`` of a cell whose gates read only ``x_t`` (minGRU, minLSTM)."""

  init: Callable
  initial_carry: Callable
  input_transform: Callable  # checks the params first
  check_params: Callable  # check_params(params): the cell's own params type and kernel width, else a clear error


def input_only_parts(hidden_size: int, n_blocks: int, params_type: type, carry_type: type, *, use_bias: bool,
                     kernel_init: Callable, bias_init: Callable, dtype: Optional[Any], param_dtype: Any,
                     precision: Any) -> InputOnlyParts:
  """The parts of a cell with params ``(w: [F, nH], b: [nH] or None)`` and carry ``(h: [*B, H])``."""
  H = hidden_size

  def init(key, input_size):
    input_size = check_init_args(key, input_size)
    k_w, k_b = jax.random.split(key)
    w = init_blocks(k_w, kernel_init, input_size, H, n_blocks, param_dtype)
    b = bias_init(k_b, (n_blocks * H,), param_dtype) if use_bias else None
    return params_type(w=w, b=b)

  def initial_carry(params, batch_shape=(), dtype=None):
    batch_shape = _checks.batch_shape("batch_shape", batch_shape)
    dt = _checks.dtype("dtype", dtype) or params.w.dtype
    return carry_type(h=jnp.zeros(batch_shape + (H,), dt))

  def check_params(params):
    _checks.params_type("params", params, params_type)
    _checks.param_shape("params.w", params.w, (params.w.shape[0], n_blocks * H))

  def input_transform(params, xs):
    check_params(params)
    xs = _checks.step_input("x", xs, (params.w.shape[0],))
    return project(xs, params.w, params.b, dtype, precision)

  return InputOnlyParts(init=init, initial_carry=initial_carry, input_transform=input_transform,
                        check_params=check_params)


def config(factory: str, **kwargs: Any) -> CellConfig:
  """The :class:`jaxrnn.CellConfig` of a cell built by ``factory``: its math-defining hyperparameters.

  Sorted by name; a callable (a custom activation) is recorded as ``"custom"``, so that an exporter refuses it
  instead of guessing what it computes.
  """
  return CellConfig(factory, tuple(sorted((k, "custom" if callable(v) else v) for k, v in kwargs.items())))
