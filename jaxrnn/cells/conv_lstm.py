"""Convolutional LSTM (Shi et al. 2015) over 1-D ``[W, C]`` and 2-D ``[H, W, C]`` feature maps."""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union, Unpack

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import initializers
from jaxrnn.cells import _dense
from jaxrnn.cells.options import RecurrentOptions, resolve
from jaxrnn.cells import _parts
from jaxrnn.types import Cell

_DIMENSION_NUMBERS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}


class ConvLSTMParams(NamedTuple):
  """Parameters of :func:`conv_lstm`. Gate blocks (last axis) are ordered ``[i, f, g, o]`` as in :func:`lstm`."""

  w_i: jax.Array  # [*K, C, 4H] input-to-state kernel (K: kernel_size, C: input channels, H: features)
  w_h: jax.Array  # [*K, H, 4H] state-to-state kernel
  b: Optional[jax.Array]  # [4H] bias (forget block initialised to forget_bias; Flax: b_ih + b_hh); None if no bias
  w_c: Optional[jax.Array]  # [3, *S, H] peephole weights [i, f, o] (Hadamard, one per position); None if off


class ConvLSTMCarry(NamedTuple):
  """Carry of :func:`conv_lstm`."""

  h: jax.Array  # [*B, *S, H] hidden state map, also the output
  c: jax.Array  # [*B, *S, H] cell state map


def _kernel_size(value: Any) -> tuple:
  if not isinstance(value, (tuple, list)):
    raise TypeError(f"kernel_size must be a tuple of 1 or 2 positive ints (one per spatial axis: (k,) for [W, C] "
                    f"inputs, (kh, kw) for [H, W, C]), got {type(value).__name__} {value!r}")
  if len(value) not in _DIMENSION_NUMBERS:
    raise ValueError(f"kernel_size must have 1 or 2 entries (1-D or 2-D maps), got {len(value)}: {tuple(value)!r}")
  return tuple(_checks.positive_int(f"kernel_size[{i}]", k) for i, k in enumerate(value))


def _conv(x: jax.Array, w: jax.Array, ndim: int, dtype: Optional[Any], precision: Any) -> jax.Array:
  """SAME convolution of ``x: [*L, *S, C]`` (any leading axes, flattened to one) with ``w: [*K, C, O]``."""
  lead = x.shape[:x.ndim - ndim - 1]
  cd = _dense.compute_dtype(dtype, x, w)
  flat = x.reshape((math.prod(lead),) + x.shape[x.ndim - ndim - 1:]).astype(cd)
  y = jax.lax.conv_general_dilated(flat, w.astype(cd), window_strides=(1,) * ndim, padding="SAME",
                                   dimension_numbers=_DIMENSION_NUMBERS[ndim], precision=precision)
  return y.reshape(lead + y.shape[1:])


def conv_lstm(
    features: int,
    kernel_size: Sequence[int],
    *,
    peephole: bool = False,
    forget_bias: Optional[float] = None,
    use_bias: bool = True,
    activation: Union[str, Callable] = "tanh",
    gate_activation: Union[str, Callable] = "sigmoid",
    peephole_init: Callable = initializers.zeros,
    **options: Unpack[RecurrentOptions],
) -> Cell:
  r"""The convolutional LSTM of Shi et al. 2015, "Convolutional LSTM Network" (NeurIPS, arXiv:1506.04214).

  The LSTM with every matrix product replaced by a convolution (:math:`*`, SAME padding, stride 1) over the
  feature map, so ``x``, ``h`` and ``c`` are maps ``[*S, C]`` / ``[*S, H]``:

  .. math::

     i_t &= \sigma(W_{xi} * x_t + W_{hi} * h_{t-1} + w_{ci} \odot c_{t-1} + b_i) \\
     f_t &= \sigma(W_{xf} * x_t + W_{hf} * h_{t-1} + w_{cf} \odot c_{t-1} + b_f) \\
     c_t &= f_t \odot c_{t-1} + i_t \odot \tanh(W_{xg} * x_t + W_{hg} * h_{t-1} + b_g) \\
     o_t &= \sigma(W_{xo} * x_t + W_{ho} * h_{t-1} + w_{co} \odot c_t + b_o) \\
     h_t &= o_t \odot \tanh(c_t)

  The peephole terms :math:`w_{c\cdot} \odot c` (``[*S, H]`` weights, one per position as in the paper) are there
  only with ``peephole=True``; without them this is ``flax.linen.ConvLSTMCell`` (parity tested: Flax's gate order
  is ``[i, g, f, o]``, it has two biases and adds a constant 1 to the forget gate, which is ``forget_bias=1.0``
  here). The params do not depend on the map size ``S`` (``w_c`` aside): a cell initialised on ``8×8`` maps runs
  on ``6×6`` ones, as Flax's does; the carry covers the map of the input it runs on (``cell.map_ndim = len(S)``:
  ``initial_carry(params, (*B, *S))``, which :func:`jaxrnn.unroll` builds from ``xs`` when ``carry=None``). With
  ``peephole=True`` the per-position weights ``w_c: [3, *S, H]`` fix ``S``: another map size raises a
  ``ValueError``. SAME padding follows ``lax``: ``(k - 1) // 2`` zeros before and ``k // 2`` after each spatial
  axis, so an even kernel is padded asymmetrically. The input convolution of all steps is one batched
  convolution (``input_transform``), outside the time loop.

  Args:
    features: ``H``, the number of channels of ``h`` and ``c``.
    kernel_size: ``(k,)`` for 1-D maps (``x: [*B, W, C]``, ``cell.input_ndim == 2``) or ``(kh, kw)`` for 2-D maps
      (``x: [*B, H, W, C]``, ``cell.input_ndim == 3``); the same size for the input and the recurrent kernel.
    peephole: add the paper's peephole terms (per-position weights: the map size is then the one given to
      ``init``).
    forget_bias: added to ``b_f`` at initialisation; ``None`` means 1.0 with a bias and 0.0 without one.
    use_bias: whether the cell has the bias ``b``.
    activation: the candidate and output nonlinearity (``"tanh"`` or a callable).
    gate_activation: the gates' nonlinearity (``"sigmoid"`` or a callable).
    peephole_init: initialiser of ``w_c: [3, *S, H]`` (default zeros).
    **options: :class:`jaxrnn.cells.options.RecurrentOptions`: ``kernel_init``, ``recurrent_kernel_init`` and
      ``bias_init`` draw the whole kernels ``W_x: [*K, C, 4H]``, ``W_h: [*K, H, 4H]`` (one draw each, in
      ``param_dtype``; here both LeCun normal by default, as Flax's ``Conv``) and ``b: [4H]`` (then
      ``forget_bias`` is added); ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``ConvLSTMParams`` and ``ConvLSTMCarry(h, c)``; ``init(key, input_size)`` takes
    the per-example map shape ``input_size = (W, C)`` or ``(H, W, C)`` (only ``C``, and ``S`` with peepholes,
    shape the params); ``initial_carry(params, (*B, *S))``; ``step`` returns ``h: [*B, *S, H]``.

  Raises:
    TypeError / ValueError: ``kernel_size`` not a tuple of 1 or 2 positive ints; ``forget_bias`` without a bias;
    (at ``initial_carry``/``step``) a ``batch_shape`` without the map axes, or with peepholes another map size.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.conv_lstm(3, (3, 3))
    >>> params = cell.init(jax.random.key(0), (4, 4, 2))           # [H, W, C] maps
    >>> cell.input_ndim, params.w_i.shape, params.w_h.shape
    (3, (3, 3, 2, 12), (3, 3, 3, 12))
    >>> xs = jnp.ones((5, 6, 4, 4, 2))                              # [B, T, H, W, C]
    >>> carry, hs = jaxrnn.unroll(cell, params, cell.initial_carry(params, (5, 4, 4)), xs)  # batch_shape (*B, *S)
    >>> hs.shape, carry.c.shape
    ((5, 6, 4, 4, 3), (5, 4, 4, 3))
    >>> carry, hs = jaxrnn.unroll(cell, params, None, jnp.ones((5, 6, 7, 3, 2)))  # another map size, same params
    >>> hs.shape
    (5, 6, 7, 3, 3)
  """
  H, act, gate_act = _dense.hyper(features, activation, gate_activation, size_name="features")
  opts = resolve("conv_lstm", options, recurrent_kernel_init=initializers.lecun_normal())
  dtype, param_dtype, precision = opts.dtype, opts.param_dtype, opts.precision
  kernel_size = _kernel_size(kernel_size)
  forget_bias = _dense.forget_bias(forget_bias, use_bias)
  nd = len(kernel_size)
  layout = "(W, C)" if nd == 1 else "(H, W, C)"

  def init(key, input_size):
    _checks.key("key", key)
    if not isinstance(input_size, (tuple, list)) or len(input_size) != nd + 1:
      raise ValueError(f"input_size must be the per-example map shape {layout} for kernel_size={kernel_size}, "
                       f"got {input_size!r}")
    input_size = _checks.feature_shape("input_size", input_size)
    spatial, channels = input_size[:-1], input_size[-1]
    k_i, k_h, k_b, k_c = jax.random.split(key, 4)
    w_i = opts.kernel_init(k_i, kernel_size + (channels, 4 * H), param_dtype)
    w_h = opts.recurrent_kernel_init(k_h, kernel_size + (H, 4 * H), param_dtype)
    b = opts.bias_init(k_b, (4 * H,), param_dtype).at[H:2 * H].add(forget_bias) if use_bias else None
    w_c = peephole_init(k_c, (3,) + spatial + (H,), param_dtype) if peephole else None
    return ConvLSTMParams(w_i=w_i, w_h=w_h, b=b, w_c=w_c)

  def check_map(params, spatial, what):
    """Raises unless the per-position peephole weights (if any) are for maps of shape ``spatial``."""
    if params.w_c is not None and tuple(params.w_c.shape[1:-1]) != tuple(spatial):
      raise ValueError(f"{what} has maps of shape {tuple(spatial)}, but conv_lstm(peephole=True) has per-position "
                       f"peephole weights w_c for maps {tuple(params.w_c.shape[1:-1])} (the map size given to "
                       f"init); without peepholes the cell runs on any map size")

  def zeros_carry(params, batch_shape, dt):
    if len(batch_shape) < nd:
      raise ValueError(f"batch_shape of conv_lstm over {nd}-D maps must be (*B, *S): the batch shape followed by "
                       f"the {nd} map axes of the input (the carry covers the map; jaxrnn.carry_batch_shape(cell, "
                       f"B, F) builds it from the per-example input shape F), got {batch_shape}")
    check_map(params, batch_shape[len(batch_shape) - nd:], f"batch_shape {batch_shape}")
    zeros = jnp.zeros(batch_shape + (H,), dt)
    return ConvLSTMCarry(h=zeros, c=zeros)

  initial_carry = _parts.initial_carry(zeros_carry, lambda params: params.w_h.dtype)

  def input_transform(params, xs):
    xs = _checks.floating("x", xs)
    if xs.ndim < nd + 1:
      raise ValueError(f"x must have shape [*B, {layout[1:-1]}] ({nd} map axes and channels), got shape {xs.shape}")
    spatial = tuple(xs.shape[xs.ndim - nd - 1:xs.ndim - 1])
    check_map(params, spatial, "x")
    xs = _checks.step_input("x", xs, spatial + (params.w_i.shape[-2],))
    return _dense.add_bias(_conv(xs, params.w_i, nd, dtype, precision), params.b)

  def step_transformed(params, carry, u):
    u = _checks.floating("input_transform(x)", u)
    if u.ndim < nd + 1:
      raise ValueError(f"input_transform(x) must have {nd} map axes and {4 * H} channels, got shape {u.shape}")
    spatial = tuple(u.shape[u.ndim - nd - 1:u.ndim - 1])
    check_map(params, spatial, "x")
    u = _checks.step_input("input_transform(x)", u, spatial + (4 * H,))
    _checks.carry_type("carry", carry, ConvLSTMCarry)
    batch_shape = u.shape[:u.ndim - nd - 1]
    for field in ConvLSTMCarry._fields:
      _checks.carry_leaf(f"carry.{field}", getattr(carry, field), batch_shape, spatial + (H,))
    cdt = carry.c.dtype
    z = (u + _conv(carry.h, params.w_h, nd, dtype, precision)).astype(cdt)
    i, f, g, o = jnp.split(z, 4, axis=-1)
    w_c = None if params.w_c is None else params.w_c.astype(cdt).reshape(
        (3,) + (1,) * len(batch_shape) + params.w_c.shape[1:])
    if w_c is not None:
      i = i + w_c[0] * carry.c
      f = f + w_c[1] * carry.c
    c = gate_act(f) * carry.c + gate_act(i) * act(g)
    if w_c is not None:
      o = o + w_c[2] * c
    h = gate_act(o) * act(c)
    return ConvLSTMCarry(h=h, c=c), h

  step = _parts.step_of(input_transform, step_transformed)

  return Cell(init=init, initial_carry=initial_carry, step=step, input_transform=input_transform,
              step_transformed=step_transformed, input_ndim=nd + 1, name=f"conv_lstm_{nd}d", map_ndim=nd)
