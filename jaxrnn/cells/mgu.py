"""Minimal gated unit (Zhou, Wu, Zhang & Zhou 2016): a GRU whose update and reset gates are one gate."""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Union, Unpack

import jax
import jax.numpy as jnp

from jaxrnn.cells import _dense
from jaxrnn.cells import _parts
from jaxrnn.cells.options import RecurrentOptions, resolve
from jaxrnn.types import Cell

VARIANTS = ("zhou", "flax")


class MGUParams(NamedTuple):
  """Parameters of :func:`mgu`. Gate blocks are ordered ``[f, n]`` (the gate, then the candidate)."""

  w_i: jax.Array  # [F, 2H] input kernel
  w_h: jax.Array  # [H, 2H] recurrent kernel
  b: Optional[jax.Array]  # [2H] input-side bias [b_f, b_n]; None if use_bias=False
  b_hn: Optional[jax.Array]  # [H] recurrent bias of the candidate (variant="flax" with reset_gate); else None


class MGUCarry(NamedTuple):
  """Carry of :func:`mgu`."""

  h: jax.Array  # [*B, H] hidden state, also the output


def mgu(
    hidden_size: int,
    *,
    variant: str = "zhou",
    reset_gate: bool = True,
    use_bias: bool = True,
    forget_bias: Optional[float] = None,
    activation: Union[str, Callable] = "tanh",
    gate_activation: Union[str, Callable] = "sigmoid",
    **options: Unpack[RecurrentOptions],
) -> Cell:
  r"""The minimal gated unit: one gate ``f`` plays both the GRU's update and reset gates.

  ``variant="zhou"`` (default) is the cell of Zhou, Wu, Zhang & Zhou 2016, "Minimal Gated Unit for Recurrent
  Neural Networks" (arXiv:1603.09420), eq. (MGU): the gate resets ``h`` *before* the recurrent matmul and
  ``f = 1`` means "take the candidate":

  .. math::

     f_t &= \sigma(x_t W_{if} + h_{t-1} W_{hf} + b_f) \\
     n_t &= \tanh(x_t W_{in} + (f_t \odot h_{t-1}) W_{hn} + b_n) \\
     h_t &= (1 - f_t) \odot h_{t-1} + f_t \odot n_t

  ``variant="flax"`` is ``flax.linen.MGUCell`` (parity tested): the gate scales the recurrent term *after* the
  matmul (cuDNN-style, with its own bias ``b_hn``) and ``f = 1`` means "keep ``h``":

  .. math::

     f_t &= \sigma(x_t W_{if} + b_f + h_{t-1} W_{hf}) \\
     n_t &= \tanh(x_t W_{in} + b_n + f_t \odot (h_{t-1} W_{hn} + b_{hn})) \\
     h_t &= (1 - f_t) \odot n_t + f_t \odot h_{t-1}

  The two are different functions (not a relabelling ``f -> 1 - f``). With ``reset_gate=False`` the candidate
  sees ``h_{t-1} W_{hn}`` ungated (and the flax variant has no ``b_hn``, as Flax's ``reset_gate=False``).

  Args:
    hidden_size: ``H``.
    variant: ``"zhou"`` (the paper) or ``"flax"`` (``flax.linen.MGUCell``).
    reset_gate: whether the gate also resets the recurrent input of the candidate.
    use_bias: whether the cell has biases (``b``, and ``b_hn`` in the flax variant).
    forget_bias: added to ``b_f`` at initialisation; ``None`` means 1.0 for ``"flax"`` with a bias (Flax's
      ``forget_bias_init=ones``) and 0.0 otherwise.
    activation: the candidate nonlinearity (``"tanh"`` or a callable).
    gate_activation: the gate's nonlinearity (``"sigmoid"`` or a callable).
    **options: :class:`jaxrnn.cells.options.RecurrentOptions`: ``kernel_init``, ``recurrent_kernel_init`` and
      ``bias_init`` draw the ``[f, n]`` blocks of ``w_i: [F, 2H]`` and ``w_h: [H, 2H]``, and ``b: [2H]`` (before
      ``forget_bias``), ``b_hn: [H]``; ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``MGUParams`` and ``MGUCarry(h)``.

  Raises:
    ValueError: an unknown ``variant``, or ``forget_bias`` set without a bias.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.mgu(4)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> params.w_i.shape, params.w_h.shape, params.b_hn is None
    ((3, 8), (4, 8), True)
    >>> carry, h = cell(params, cell.initial_carry(params, (2,)), jnp.ones((2, 3)))
    >>> h.shape
    (2, 4)
  """
  if variant not in VARIANTS:
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
  H, act, gate_act = _dense.hyper(hidden_size, activation, gate_activation)
  opts = resolve("mgu", options)
  dtype, param_dtype, precision = opts.dtype, opts.param_dtype, opts.precision
  flax_form = variant == "flax"
  forget_bias = _dense.forget_bias(forget_bias, use_bias, default=1.0 if flax_form else 0.0)
  has_b_hn = flax_form and reset_gate and use_bias

  def init_b_hn(keys, input_size):
    del input_size
    return dict(b_hn=opts.bias_init(keys[0], (H,), param_dtype) if has_b_hn else None)

  init, initial_carry, input_transform, _, check_step = _dense.dense_parts(
      H, 2, MGUParams, MGUCarry, opts, forget_block=0, forget_bias=forget_bias, extra_keys=1, init_extra=init_b_hn,
      use_bias=use_bias)

  def step_transformed(params, carry, u):
    u = check_step(params, carry, u)
    h_prev = carry.h
    cdt = h_prev.dtype
    u_f, u_n = jnp.split(u.astype(cdt), 2, axis=-1)
    if flax_form or not reset_gate:
      hw = _dense.recurrent(h_prev, params.w_h, dtype, precision).astype(cdt)
      hw_f, hw_n = jnp.split(hw, 2, axis=-1)
      f = gate_act(u_f + hw_f)
      if reset_gate:
        hw_n = f * _dense.add_bias(hw_n, params.b_hn)
    else:  # Zhou et al.: reset before the candidate's matmul.
      hw_f = _dense.recurrent(h_prev, params.w_h[:, :H], dtype, precision).astype(cdt)
      f = gate_act(u_f + hw_f)
      hw_n = _dense.recurrent(f * h_prev, params.w_h[:, H:], dtype, precision).astype(cdt)
    n = act(u_n + hw_n)
    h = (1 - f) * n + f * h_prev if flax_form else (1 - f) * h_prev + f * n
    return MGUCarry(h=h), h

  name = "mgu" if variant == "zhou" else "mgu_flax"
  return _parts.transformed_cell(init, initial_carry, input_transform, step_transformed, name=name)
