"""Input checks that run at trace time (free under ``jit``) and name the argument, expected and actual values."""

from __future__ import annotations

import operator
from typing import Any, Callable, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn.types import Cell


def positive_int(name: str, value: Any) -> int:
  """Returns ``value`` as an ``int`` or raises ``ValueError``/``TypeError`` naming ``name``."""
  if isinstance(value, bool):
    raise TypeError(f"{name} must be a positive int, got bool {value!r}")
  try:
    ivalue = operator.index(value)
  except TypeError:
    raise TypeError(f"{name} must be a positive int, got {type(value).__name__} {value!r}") from None
  if ivalue <= 0:
    raise ValueError(f"{name} must be a positive int, got {ivalue}")
  return ivalue


def feature_shape(name: str, value: Any) -> Tuple[int, ...]:
  """Normalises an ``int`` or a sequence of ``int`` to a tuple of positive sizes."""
  if isinstance(value, (tuple, list)):
    if not value:
      raise ValueError(f"{name} must be a positive int or a non-empty tuple of them, got {value!r}")
    return tuple(positive_int(f"{name}[{i}]", v) for i, v in enumerate(value))
  return (positive_int(name, value),)


def _is_key(value: Any, *, single: bool = True) -> bool:
  """Whether ``value`` is a PRNG key: typed (a scalar, or any shape unless ``single``) or raw ``uint32[2]``."""
  if not isinstance(value, (jax.Array, np.ndarray)):
    return False
  if jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
    return value.ndim == 0 or not single
  return value.dtype == jnp.uint32 and value.shape == (2,)


def _is_shape(value: Any) -> bool:
  """Whether ``value`` looks like a shape: an int or a non-empty tuple/list of ints (never params)."""
  is_int = lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
  if type(value) in (tuple, list):  # exactly: params NamedTuples are tuples too
    return bool(value) and all(is_int(v) for v in value)
  return is_int(value)


def key(name: str, value: Any) -> jax.Array:
  """Checks that ``value`` is a PRNG key (typed or raw ``uint32[2]``)."""
  if _is_key(value):
    return value
  raise TypeError(
      f"{name} must be a single PRNG key (jax.random.key(seed) or jax.random.PRNGKey(seed)), got "
      f"{type(value).__name__}{_shape_dtype(value)}")


def initial_carry_params(params: Any) -> Any:
  """Checks that ``initial_carry`` got the cell's params first, not a PRNG key or a shape.

  ``cell.initial_carry(key, (B,))`` is the Flax habit; without this check it fails later with an
  ``AttributeError`` about a params field. Raises ``TypeError`` saying what to pass; returns ``params``.
  """
  if _is_key(params, single=False):
    got = "a PRNG key (pass a key as key=...)"
  elif _is_shape(params):
    got = f"a shape {params!r} (pass it as batch_shape)"
  else:
    return params
  raise TypeError("initial_carry takes the cell's params first: cell.initial_carry(params, batch_shape, dtype=None, "
                  f"key=None); got {got}")


def optional_key(name: str, value: Any) -> Any:
  """``None`` or a single PRNG key (:func:`key`)."""
  return None if value is None else key(name, value)


def _shape_dtype(value: Any) -> str:
  shape = getattr(value, "shape", None)
  dtype = getattr(value, "dtype", None)
  return f" with shape {shape} and dtype {dtype}" if shape is not None else ""


def floating(name: str, x: Any) -> jax.Array:
  """Checks that ``x`` is a real floating-point array and returns it as a JAX array."""
  dtype = getattr(x, "dtype", None)
  if dtype is None:
    x = jnp.asarray(x)
    dtype = x.dtype
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"{name} must be a real floating-point array, got dtype {dtype}")
  return jnp.asarray(x)


def step_input(name: str, x: Any, features: Sequence[int]) -> jax.Array:
  """Checks ``x: [*B, *features]`` (floating) and returns it as a JAX array."""
  x = floating(name, x)
  features = tuple(features)
  n = len(features)
  if x.ndim < n or tuple(x.shape[x.ndim - n:]) != features:
    expected = "[*B, " + ", ".join(str(f) for f in features) + "]"
    raise ValueError(f"{name} must have shape {expected} (trailing feature shape {features}), got shape {x.shape}")
  return x


def reset_pair(name: str, inputs: Any, owner: str) -> Tuple[Any, jax.Array]:
  """Splits ``(x, should_reset)`` (the input of :func:`jaxrnn.reset_on` and ``rg_lru(resets=True)``).

  Args:
    name: what the pair is called in errors (``"x"``, ``"xs"``, ``"input_transform(x)"``).
    inputs: the pair.
    owner: the cell's name, for errors.

  Returns:
    ``(x, should_reset)`` with ``should_reset`` bool (a number: nonzero means True); shapes are the caller's to
    check.
  """
  if not isinstance(inputs, tuple) or len(inputs) != 2:
    shape = getattr(inputs, "shape", None)
    raise TypeError(f"{name} of {owner} must be the pair ({name}, should_reset) (inputs and a reset flag per "
                    f"example), got {type(inputs).__name__}" + (f" of shape {shape}" if shape is not None else ""))
  x, flag = inputs
  flag = jnp.asarray(flag)
  if flag.dtype != jnp.bool_:
    if not jnp.issubdtype(flag.dtype, jnp.number):
      raise TypeError(f"should_reset of {owner} must be bool or numeric, got dtype {flag.dtype}")
    flag = flag != 0
  return x, flag


def carry_type(name: str, carry: Any, expected: type[Any]) -> None:
  """Checks that the carry is the cell's own NamedTuple (so no one guesses ``(c, h)`` vs ``(h, c)``)."""
  if not isinstance(carry, expected):
    raise TypeError(
        f"{name} must be a {expected.__name__}{expected._fields} (build it with cell.initial_carry), got "
        f"{type(carry).__name__}")


def carry_leaf(name: str, leaf: Any, batch_shape: Sequence[int], features: Sequence[int]) -> None:
  """Checks that a carry leaf has shape ``[*batch_shape, *features]`` and a floating dtype."""
  expected = tuple(batch_shape) + tuple(features)
  shape = tuple(getattr(leaf, "shape", ()))
  if shape != expected:
    raise ValueError(
        f"{name} must have shape {expected} (batch shape {tuple(batch_shape)} of x, features {tuple(features)}), "
        f"got shape {shape}")
  dtype = getattr(leaf, "dtype", None)
  if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(f"{name} must be a real floating-point array, got dtype {dtype}")


def param_shape(name: str, leaf: Any, expected: Sequence[int]) -> None:
  shape = tuple(getattr(leaf, "shape", ()))
  if shape != tuple(expected):
    raise ValueError(f"{name} must have shape {tuple(expected)}, got shape {shape}")


def batch_shape(name: str, value: Any) -> Tuple[int, ...]:
  """Normalises a batch shape argument (``int`` or tuple of non-negative ints)."""
  items: Any = (value,) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
  try:
    shape = tuple(operator.index(v) for v in items)
  except TypeError:
    raise TypeError(f"{name} must be a tuple of ints, got {value!r}") from None
  if any(v < 0 for v in shape):
    raise ValueError(f"{name} must be a tuple of non-negative ints, got {shape}")
  return shape


def activation(name: str, value: Any, choices: dict) -> Callable:
  """Resolves an activation given as a callable or one of the names in ``choices``."""
  if callable(value):
    return value
  if isinstance(value, str) and value in choices:
    return choices[value]
  raise ValueError(f"{name} must be a callable or one of {sorted(choices)}, got {value!r}")


def dtype(name: str, value: Any) -> Optional[Any]:
  if value is None:
    return None
  try:
    dt = jnp.dtype(value)
  except TypeError:
    raise TypeError(f"{name} must be a floating dtype or None, got {value!r}") from None
  if not jnp.issubdtype(dt, jnp.floating):
    raise TypeError(f"{name} must be a floating dtype or None, got {dt}")
  return dt


# --- reliability (issue 13): checks shared by unroll, the sequence helpers and the core cells ---

def boolean(name: str, value: Any) -> bool:
  """Returns ``value`` as a ``bool``; anything but a Python or NumPy bool raises ``TypeError`` naming ``name``."""
  if not isinstance(value, (bool, np.bool_)):
    raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
  return bool(value)


def integer_array(name: str, value: Any) -> Any:
  """Checks that ``value`` has an integer dtype (not bool, not floating) and returns it as an array."""
  if not hasattr(value, "dtype"):
    value = np.asarray(value)
  if not jnp.issubdtype(value.dtype, jnp.integer):
    raise TypeError(f"{name} must be an integer array, got dtype {value.dtype}")
  return value


def carry_batch(carry: Any, batch_shape: Sequence[int], xs_shape: Sequence[int], layout: str) -> None:
  """Checks that every leaf of ``carry`` starts with the batch shape ``*B`` of ``xs`` (the ``Cell`` contract)."""
  batch_shape = tuple(batch_shape)
  for path, leaf in jax.tree_util.tree_leaves_with_path(carry):
    shape = tuple(getattr(leaf, "shape", ()))
    if shape[:len(batch_shape)] != batch_shape:
      raise ValueError(
          f"carry{jax.tree_util.keystr(path)} must have shape [*B, ...] with the batch shape B = {batch_shape} of "
          f"xs (shape {tuple(xs_shape)}, layout {layout}), got shape {shape}")


def cell(name: str, value: Any) -> Cell:
  """Returns ``value`` if it is a :class:`jaxrnn.Cell`, else raises ``TypeError`` naming ``name``."""
  if not isinstance(value, Cell):
    raise TypeError(f"{name} must be a jaxrnn.Cell, got {type(value).__name__}")
  return value


def params_type(name: str, params: Any, expected: type[Any]) -> None:
  """Checks that ``params`` is the cell's own params NamedTuple (e.g. not another cell's, not ``None``)."""
  if not isinstance(params, expected):
    raise TypeError(f"{name} must be a {expected.__name__}{expected._fields} (build them with cell.init), got "
                    f"{type(params).__name__}")


def finite_number(name: str, value: Any) -> float:
  """Returns ``value`` as a finite ``float``; NaN, infinities, bools and non-numbers raise naming ``name``."""
  if isinstance(value, (bool, np.bool_, str, bytes)) or not isinstance(value, (int, float, np.integer, np.floating)):
    raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
  value = float(value)
  if not np.isfinite(value):
    raise ValueError(f"{name} must be finite, got {value}")
  return value


def non_negative_float(name: str, value: Any) -> float:
  """Returns ``value`` as a finite ``float >= 0`` (e.g. an ``eps``); anything else raises naming ``name``."""
  value = finite_number(name, value)
  if value < 0:
    raise ValueError(f"{name} must be >= 0, got {value}")
  return value
