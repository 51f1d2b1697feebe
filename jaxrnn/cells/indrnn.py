"""The independently recurrent network (IndRNN, Li, Li, Cook, Zhu & Gao 2018), with bounded recurrent weights."""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional, Tuple, Union, Unpack

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.cells import _dense
from jaxrnn.cells import _parts
from jaxrnn.cells.options import DenseOptions, resolve
from jaxrnn.types import Cell


class IndRNNParams(NamedTuple):
  """Parameters of :func:`indrnn`."""

  w_i: jax.Array  # [F, H] input kernel
  u: jax.Array  # [H] element-wise recurrent weight (clipped in the step, see indrnn's recurrent_max_abs)
  b: Optional[jax.Array]  # [H] bias; None if use_bias=False


class IndRNNCarry(NamedTuple):
  """Carry of :func:`indrnn`."""

  h: jax.Array  # [*B, H] hidden state, also the output


def _bound(name: str, value: Any) -> Optional[float]:
  if value is None:
    return None
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
    raise ValueError(f"{name} must be None or a finite non-negative number, got {value!r}")
  return float(value)


def recurrent_bounds(recurrent_max_abs: Optional[float] = None, recurrent_min_abs: Optional[float] = None,
                     max_steps: Optional[int] = None) -> Tuple[Optional[float], Optional[float]]:
  """Checks and resolves the bounds of :func:`indrnn` to ``(min_abs, max_abs)`` (either may be ``None``)."""
  max_abs = _bound("recurrent_max_abs", recurrent_max_abs)
  min_abs = _bound("recurrent_min_abs", recurrent_min_abs)
  if max_steps is not None:
    max_steps = _checks.positive_int("max_steps", max_steps)
    if max_abs is not None:
      raise ValueError("give recurrent_max_abs or max_steps, not both (max_steps sets recurrent_max_abs = "
                       f"2 ** (1 / max_steps)); got {recurrent_max_abs!r} and {max_steps!r}")
    max_abs = 2.0 ** (1.0 / max_steps)
  if max_abs is not None and min_abs is not None and min_abs > max_abs:
    raise ValueError(f"recurrent_min_abs must be <= recurrent_max_abs, got {min_abs} > {max_abs}")
  return min_abs, max_abs


def _clip(u: jax.Array, min_abs: Optional[float], max_abs: Optional[float]) -> jax.Array:
  if max_abs is not None:
    u = jnp.clip(u, -max_abs, max_abs)
  if min_abs is not None:
    u = jnp.where(u < 0, -1.0, 1.0).astype(u.dtype) * jnp.maximum(jnp.abs(u), min_abs)
  return u


def indrnn_constrain(params: IndRNNParams, *, recurrent_max_abs: Optional[float] = None,
                     recurrent_min_abs: Optional[float] = None, max_steps: Optional[int] = None) -> IndRNNParams:
  """Projects ``params.u`` into the bounds, as the paper does after each optimiser update.

  :func:`indrnn` already clips ``u`` inside the step, so this is optional; it keeps the stored weights equal to
  the ones used (a weight stuck outside the bound gets no gradient through the clip).

  >>> import jax.numpy as jnp, jaxrnn
  >>> p = jaxrnn.IndRNNParams(w_i=jnp.zeros((1, 3)), u=jnp.array([-3.0, 0.5, 3.0]), b=None)
  >>> jaxrnn.indrnn_constrain(p, recurrent_max_abs=1.0).u.tolist()
  [-1.0, 0.5, 1.0]
  """
  min_abs, max_abs = recurrent_bounds(recurrent_max_abs, recurrent_min_abs, max_steps)
  return params._replace(u=_clip(params.u, min_abs, max_abs))


def _uniform(low: float, high: float) -> Callable:
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, low, high)
  return init


def indrnn(
    hidden_size: int,
    *,
    activation: Union[str, Callable] = "relu",
    use_bias: bool = True,
    recurrent_max_abs: Optional[float] = None,
    recurrent_min_abs: Optional[float] = None,
    max_steps: Optional[int] = None,
    recurrent_init: Optional[Callable] = None,
    **options: Unpack[DenseOptions],
) -> Cell:
  r"""The IndRNN of Li et al. 2018 (CVPR, arXiv:1803.04831): each unit recurs only on itself.

  .. math::

     h_t = \phi(x_t W + u \odot h_{t-1} + b), \qquad
     u \leftarrow \mathrm{sign}(u) \cdot \mathrm{clip}(|u|, \text{recurrent\_min\_abs}, \text{recurrent\_max\_abs})

  The recurrent weight ``u: [H]`` is a vector (a diagonal recurrent matrix), so units are independent in time and
  only interact through the next layer. Since :math:`\partial h_T / \partial h_t = \prod_k \phi' u`, the paper
  bounds ``|u|`` so that gradients over ``T`` steps neither explode nor vanish; for ReLU the usual bound is
  :math:`|u| \le 2^{1/T}` (``max_steps=T``). The bound is applied inside the step (the clipped ``u`` is what the
  cell uses, as in the reference TensorFlow cell); :func:`indrnn_constrain` projects stored params after an
  optimiser update, as the paper does (``sign(0)`` counts as ``+1`` for ``recurrent_min_abs``).

  Args:
    hidden_size: ``H``.
    activation: ``"relu"`` (default, the paper's) or any name in ``"tanh"``, ... or a callable.
    use_bias: whether the cell has the bias ``b``.
    recurrent_max_abs: bound on ``|u|`` (``None``: unbounded).
    recurrent_min_abs: lower bound on ``|u|`` (``None``: none), against vanishing memory.
    max_steps: ``T_max``; sets ``recurrent_max_abs = 2 ** (1 / T_max)`` (exclusive with ``recurrent_max_abs``).
    recurrent_init: initialiser of ``u: [H]``; default uniform in ``[0, recurrent_max_abs]`` (``[0, 1]`` when
      unbounded), as in the paper's experiments.
    **options: :class:`jaxrnn.cells.options.DenseOptions`: ``kernel_init`` draws ``W: [F, H]`` and ``bias_init``
      ``b: [H]``; ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``IndRNNParams`` and ``IndRNNCarry(h)``.

  Raises:
    ValueError: negative or inconsistent bounds, ``max_steps`` together with ``recurrent_max_abs``.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.indrnn(4, max_steps=100)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> params.u.shape, bool((params.u <= 2 ** (1 / 100)).all())
    ((4,), True)
    >>> carry, h = cell(params, cell.initial_carry(params, (2,)), jnp.ones((2, 3)))
    >>> h.shape
    (2, 4)
  """
  H, act, _ = _dense.hyper(hidden_size, activation)
  opts = resolve("indrnn", options, DenseOptions)
  dtype, param_dtype, precision = opts.dtype, opts.param_dtype, opts.precision
  min_abs, max_abs = recurrent_bounds(recurrent_max_abs, recurrent_min_abs, max_steps)
  if recurrent_init is None:
    recurrent_init = _uniform(0.0, 1.0 if max_abs is None else max_abs)

  def init(key, input_size):
    input_size = _dense.check_init_args(key, input_size)
    k_w, k_u, k_b = jax.random.split(key, 3)
    w_i = opts.kernel_init(k_w, (input_size, H), param_dtype)
    u = recurrent_init(k_u, (H,), param_dtype)
    b = opts.bias_init(k_b, (H,), param_dtype) if use_bias else None
    return IndRNNParams(w_i=w_i, u=u, b=b)

  initial_carry = _parts.zeros_carry(IndRNNCarry, lambda params: params.u.dtype, h=(H,))

  def input_transform(params, xs):
    xs = _checks.step_input("x", xs, (params.w_i.shape[0],))
    return _dense.project(xs, params.w_i, params.b, dtype, precision)

  def step_transformed(params, carry, u_x):
    u_x = _dense.check_transformed("input_transform(x)", u_x, H)
    _dense.check_carry(carry, IndRNNCarry, u_x.shape[:-1], H)
    _checks.param_shape("params.u", params.u, (H,))
    cdt = carry.h.dtype
    u = _clip(params.u.astype(cdt), min_abs, max_abs)
    h = act(u_x.astype(cdt) + carry.h * u.reshape((1,) * (carry.h.ndim - 1) + (H,)))
    return IndRNNCarry(h=h), h

  return _parts.transformed_cell(init, initial_carry, input_transform, step_transformed, name="indrnn",
                                 elementwise=True)
