"""Depth-gated LSTM (Yao, Cohn, Vylomova, Duh & Dyer 2015, arXiv:1508.03790): a deep LSTM whose memory cells are
linked across layers by a depth gate."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence, Tuple, Unpack

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import initializers
from jaxrnn.cells import _dense
from jaxrnn.cells import _parts
from jaxrnn.cells._lstm_common import LSTMCarry
from jaxrnn.cells.options import RecurrentOptions, resolve
from jaxrnn.types import Cell


class DepthGatedLSTMLayerParams(NamedTuple):
  """Parameters of one layer of :func:`depth_gated_lstm`. Gate blocks are ordered ``[i, f, g, o]``.

  ``F_l`` is the layer's input size: the network's input size for the first layer, ``H`` above it. The depth-gate
  fields are ``None`` on the first layer (there is no memory cell below it).
  """

  w_i: jax.Array  # [F_l, 4H] input kernel of the LSTM gates
  w_h: jax.Array  # [H, 4H] recurrent kernel
  b: Optional[jax.Array]  # [4H] bias; None if use_bias=False
  w_p: Optional[jax.Array]  # [3, H] diagonal peepholes of [i, f, o] (i, f look at c_{t-1}, o at c_t); or None
  w_xd: Optional[jax.Array]  # [F_l, H] depth gate's input kernel W_xd (None on layer 1)
  w_cd: Optional[jax.Array]  # [H] depth gate's peephole on the layer's own c_{t-1} (None on layer 1)
  w_ld: Optional[jax.Array]  # [H] depth gate's peephole on the lower layer's c_t (None on layer 1)
  b_d: Optional[jax.Array]  # [H] depth gate's bias (None on layer 1 or if use_bias=False)


def _diag(w: jax.Array, v: jax.Array) -> jax.Array:
  """``w ⊙ v`` for ``w: [H]`` and ``v: [*B, H]``, in ``v``'s dtype, without rank promotion."""
  return w.astype(v.dtype).reshape((1,) * (v.ndim - 1) + w.shape) * v


def depth_gated_lstm(
    hidden_sizes: Sequence[int],
    *,
    peepholes: bool = True,
    forget_bias: Optional[float] = None,
    depth_bias: float = 0.0,
    use_bias: bool = True,
    peephole_init: Callable = initializers.zeros,
    **options: Unpack[RecurrentOptions],
) -> Cell:
  r"""A deep depth-gated LSTM as one cell: all layers advance by one time step in each ``step``.

  Layer :math:`L` (input :math:`x^L_t = h^{L-1}_t`, the output of the layer below; :math:`x^1_t = x_t`) is the
  peephole LSTM of Graves (2013) that Yao et al. (2015) build on, with diagonal peepholes :math:`w_{c\cdot}`, plus a
  depth gate :math:`d^L_t` (Yao et al., eqs. for :math:`d^{L+1}_t` and :math:`c^{L+1}_t`) that adds the lower
  layer's memory cell :math:`c^{L-1}_t` of the same time step to the layer's own:

  .. math::

     i^L_t &= \sigma(x^L_t W^L_{xi} + h^L_{t-1} W^L_{hi} + w^L_{ci} \odot c^L_{t-1} + b^L_i) \\
     f^L_t &= \sigma(x^L_t W^L_{xf} + h^L_{t-1} W^L_{hf} + w^L_{cf} \odot c^L_{t-1} + b^L_f) \\
     g^L_t &= \tanh(x^L_t W^L_{xg} + h^L_{t-1} W^L_{hg} + b^L_g) \\
     d^L_t &= \sigma(x^L_t W^L_{xd} + w^L_{cd} \odot c^L_{t-1} + w^L_{ld} \odot c^{L-1}_t + b^L_d) \\
     c^L_t &= d^L_t \odot c^{L-1}_t + f^L_t \odot c^L_{t-1} + i^L_t \odot g^L_t \\
     o^L_t &= \sigma(x^L_t W^L_{xo} + h^L_{t-1} W^L_{ho} + w^L_{co} \odot c^L_t + b^L_o) \\
     h^L_t &= o^L_t \odot \tanh(c^L_t)

  The first layer has no memory cell below it, so no depth gate (the :math:`d \odot c^{L-1}` term is absent).
  Because :math:`c^{L-1}_t` enters :math:`c^L_t` elementwise, every layer has the same width ``H``.
  ``peepholes=False`` drops :math:`w_{ci}, w_{cf}, w_{co}` (the depth gate keeps its own :math:`w_{cd}, w_{ld}`,
  which define it); with the depth gate shut (:math:`d = 0`) the cell is then exactly a stack of
  :func:`jaxrnn.lstm` layers. ``step`` outputs the top layer's :math:`h`.

  Args:
    hidden_sizes: a non-empty sequence of equal layer widths ``(H, H, ...)``, one per layer.
    peepholes: whether the gates ``i, f, o`` have diagonal peepholes (as in the paper).
    forget_bias: added to each forget gate's bias at initialisation (``None``: 1.0 with a bias, 0.0 without).
    depth_bias: added to each depth gate's bias at initialisation (0.0: the gate starts near 0.5).
    use_bias: whether the gates have biases (``b`` and ``b_d``).
    peephole_init: initialiser of the diagonal peepholes ``w_p``, ``w_cd``, ``w_ld`` (default zeros).
    **options: :class:`jaxrnn.cells.options.RecurrentOptions`: ``kernel_init``, ``recurrent_kernel_init`` and
      ``bias_init`` draw each layer's ``[F_l, H]`` input blocks (gates and depth gate), ``[H, H]`` recurrent blocks
      and biases (before ``forget_bias``/``depth_bias`` are added); ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` whose params are a tuple of :class:`DepthGatedLSTMLayerParams` (bottom layer first)
    and whose carry is a tuple of ``LSTMCarry(h [*B, H], c [*B, H])``, one per layer; ``step`` returns
    ``(carry, h_top)``. ``input_transform`` hoists the first layer's input projection out of the time loop.

  Raises:
    ValueError: ``hidden_sizes`` is empty, has a non-positive entry or unequal entries.
    TypeError: ``hidden_sizes`` is not a sequence of ints.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.depth_gated_lstm((8, 8))
    >>> params = cell.init(jax.random.key(0), 3)
    >>> carry = cell.initial_carry(params, batch_shape=(2,))
    >>> carry, h = cell(params, carry, jnp.ones((2, 3)))
    >>> h.shape, len(carry), carry[1].c.shape
    ((2, 8), 2, (2, 8))
  """
  hidden_sizes = _check_hidden_sizes(hidden_sizes)
  opts = resolve("depth_gated_lstm", options)
  dtype, param_dtype, precision = opts.dtype, opts.param_dtype, opts.precision
  forget_bias = _dense.forget_bias(forget_bias, use_bias)
  if not use_bias and depth_bias != 0.0:
    raise ValueError(f"depth_bias={depth_bias} needs a bias, but use_bias=False")
  num_layers = len(hidden_sizes)
  H = hidden_sizes[0]

  def init_layer(key, input_size, first):
    k_w, k_b, k_p, k_d, k_bd, k_cd, k_ld = jax.random.split(key, 7)
    w_i, w_h = _dense.init_kernels(k_w, input_size, H, 4, kernel_init=opts.kernel_init,
                                   recurrent_kernel_init=opts.recurrent_kernel_init, param_dtype=param_dtype)
    b = opts.bias_init(k_b, (4 * H,), param_dtype).at[H:2 * H].add(forget_bias) if use_bias else None
    w_p = peephole_init(k_p, (3, H), param_dtype) if peepholes else None
    if first:
      return DepthGatedLSTMLayerParams(w_i, w_h, b, w_p, None, None, None, None)
    w_xd = _dense.init_blocks(k_d, opts.kernel_init, input_size, H, 1, param_dtype)
    b_d = opts.bias_init(k_bd, (H,), param_dtype) + depth_bias if use_bias else None
    w_cd = peephole_init(k_cd, (H,), param_dtype)
    w_ld = peephole_init(k_ld, (H,), param_dtype)
    return DepthGatedLSTMLayerParams(w_i, w_h, b, w_p, w_xd, w_cd, w_ld, b_d)

  def init(key, input_size):
    input_size = _dense.check_init_args(key, input_size)
    keys = jax.random.split(key, num_layers)
    return tuple(init_layer(keys[l], input_size if l == 0 else H, l == 0) for l in range(num_layers))

  def zeros_carry(params, batch_shape, dt):
    del params
    zeros = jnp.zeros(batch_shape + (H,), dt)
    return tuple(LSTMCarry(h=zeros, c=zeros) for _ in range(num_layers))

  initial_carry = _parts.initial_carry(zeros_carry, lambda params: params[0].w_h.dtype)

  def input_transform(params, xs):
    xs = _checks.step_input("x", xs, (params[0].w_i.shape[0],))
    return _dense.project(xs, params[0].w_i, params[0].b, dtype, precision)

  def layer_step(p, carry, u, x, c_below):
    """One layer: ``u`` is the hoisted ``x W_i + b``; ``x``/``c_below`` are ``None`` on the first layer."""
    z = (u + _dense.recurrent(carry.h, p.w_h, dtype, precision)).astype(carry.c.dtype)
    zi, zf, zg, zo = jnp.split(z, 4, axis=-1)
    if p.w_p is not None:
      zi = zi + _diag(p.w_p[0], carry.c)
      zf = zf + _diag(p.w_p[1], carry.c)
    c = jax.nn.sigmoid(zf) * carry.c + jax.nn.sigmoid(zi) * jnp.tanh(zg)
    if c_below is not None:
      zd = _dense.project(x, p.w_xd, p.b_d, dtype, precision).astype(carry.c.dtype)
      d = jax.nn.sigmoid(zd + _diag(p.w_cd, carry.c) + _diag(p.w_ld, c_below))
      c = c + d * c_below
    if p.w_p is not None:
      zo = zo + _diag(p.w_p[2], c)
    h = jax.nn.sigmoid(zo) * jnp.tanh(c)
    return LSTMCarry(h=h, c=c)

  def step_transformed(params, carry, u):
    u = _dense.check_transformed("input_transform(x)", u, 4 * H)
    _check_params(params, num_layers)
    _dense.check_layer_carries(carry, num_layers, LSTMCarry, u.shape[:-1], hidden_sizes)
    new = [layer_step(params[0], carry[0], u, None, None)]
    for l in range(1, num_layers):
      x = new[-1].h
      u_l = _dense.project(x, params[l].w_i, params[l].b, dtype, precision)
      new.append(layer_step(params[l], carry[l], u_l, x, new[-1].c))
    return tuple(new), new[-1].h

  return _parts.transformed_cell(init, initial_carry, input_transform, step_transformed,
                                 name="depth_gated_lstm")


def _check_hidden_sizes(hidden_sizes: Any) -> Tuple[int, ...]:
  if isinstance(hidden_sizes, (str, bytes)) or not isinstance(hidden_sizes, Sequence):
    raise TypeError(f"hidden_sizes must be a non-empty sequence of positive ints (one per layer), got "
                    f"{type(hidden_sizes).__name__} {hidden_sizes!r}")
  if len(hidden_sizes) == 0:
    raise ValueError("hidden_sizes must be a non-empty sequence of positive ints (one per layer), got ()")
  sizes = tuple(_checks.positive_int(f"hidden_sizes[{l}]", h) for l, h in enumerate(hidden_sizes))
  if len(set(sizes)) != 1:
    raise ValueError(f"hidden_sizes must all be equal (the depth gate adds the lower layer's memory cell "
                     f"elementwise), got {sizes}")
  return sizes


def _check_params(params: Any, num_layers: int) -> None:
  if not isinstance(params, tuple) or len(params) != num_layers or not all(
      isinstance(p, DepthGatedLSTMLayerParams) for p in params):
    raise TypeError(f"params must be a tuple of {num_layers} DepthGatedLSTMLayerParams (from cell.init), got "
                    f"{type(params).__name__}")
