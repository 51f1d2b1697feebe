"""ParaLSTM: the coupled-gate (CIFG) LSTM with diagonal recurrent matrices (Danieli et al. 2025, ParaRNN)."""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Union, Unpack

import jax

from jaxrnn.cells import _dense
from jaxrnn.cells import _para
from jaxrnn.cells.lstm import LSTMCarry
from jaxrnn.cells.para_gru import uniform_init
from jaxrnn.cells.options import DenseOptions, resolve
from jaxrnn.types import Cell


class ParaLSTMParams(NamedTuple):
  """Parameters of :func:`para_lstm`. Gate blocks are ordered ``[f, o, g]``."""

  w: jax.Array  # [F, 3H] input kernel
  b: Optional[jax.Array]  # [3H] bias (forget_bias added to the f block at init); None if use_bias=False
  a: jax.Array  # [3H] diagonal recurrent weights of f, o and g


def para_lstm(
    hidden_size: int,
    *,
    use_bias: bool = True,
    forget_bias: Optional[float] = None,
    activation: Union[str, Callable] = "tanh",
    gate_activation: Union[str, Callable] = "sigmoid",
    recurrent_init: Callable = uniform_init(1.0),
    **options: Unpack[DenseOptions],
) -> Cell:
  r"""ParaLSTM: an LSTM with coupled input and forget gates (CIFG) and diagonal recurrent matrices.

  .. math::

     f_t &= \sigma(x_t W_f + a_f \odot h_{t-1} + b_f) \\
     o_t &= \sigma(x_t W_o + a_o \odot h_{t-1} + b_o) \\
     g_t &= \tanh(x_t W_g + a_g \odot h_{t-1} + b_g) \\
     c_t &= f_t \odot c_{t-1} + (1 - f_t) \odot g_t \\
     h_t &= o_t \odot \tanh(c_t)

  Danieli et al. 2025 ("ParaRNN") use this cell for Newton's method over the whole sequence: unit ``k`` of
  ``(h_t, c_t)`` reads only unit ``k`` of ``(h_{t-1}, c_{t-1})``, so the Jacobian is ``2 x 2`` blocks of
  diagonals. The cell declares the exact diagonal (:attr:`jaxrnn.Cell.carry_jacobian_diagonal`, two JVPs):
  ``ParallelNewton(jacobian="diagonal")`` is then a quasi-Newton method that ignores the ``h``-``c`` coupling
  (``"full"`` is exact Newton).

  Args:
    hidden_size: ``H``.
    use_bias: whether the cell has the bias ``b``.
    forget_bias: added to the forget block of ``b`` at initialisation (default 1.0; 0.0 without a bias).
    activation: the candidate and cell-output nonlinearity (``"tanh"`` or a callable).
    gate_activation: the gates' nonlinearity (``"sigmoid"`` or a callable).
    recurrent_init: draws ``a: [3H]`` (default uniform in ``[-1, 1]``).
    **options: :class:`jaxrnn.cells.options.DenseOptions`: ``kernel_init`` and ``bias_init`` draw ``w: [F, 3H]`` (per
      ``[f, o, g]`` block) and ``b: [3H]``; ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``ParaLSTMParams`` and ``LSTMCarry(h, c)``.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.para_lstm(4)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> carry, h = cell(params, cell.initial_carry(params, (2,)), jnp.ones((2, 3)))
    >>> carry.c.shape, h.shape
    ((2, 4), (2, 4))
  """
  H, act, gate_act = _dense.hyper(hidden_size, activation, gate_activation)
  opts = resolve("para_lstm", options, DenseOptions)
  fb = _dense.forget_bias(forget_bias, use_bias)

  parts = _para.parts(H, ParaLSTMParams, LSTMCarry, opts, recurrent_init=recurrent_init, use_bias=use_bias,
                      forget_block=0, forget_bias=fb)

  def step_transformed(params, carry, u):
    u = parts.check_step(params, carry, u)
    h_prev, c_prev = carry.h, carry.c
    (u_f, u_o, u_g), (ah_f, ah_o, ah_g) = _para.gate_inputs(params, u, h_prev)
    f = gate_act(u_f + ah_f)
    o = gate_act(u_o + ah_o)
    g = act(u_g + ah_g)
    c = f * c_prev + (1 - f) * g
    h = o * act(c)
    return LSTMCarry(h=h, c=c), h

  config = _dense.config("para_lstm", activation=activation, forget_bias=fb, gate_activation=gate_activation,
                         hidden_size=H, use_bias=bool(use_bias))
  return parts.cell(step_transformed, name="para_lstm", config=config, elementwise=True)
