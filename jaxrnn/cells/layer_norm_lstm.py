"""The layer-normalised LSTM (Ba, Kiros & Hinton 2016, "Layer Normalization", section 3.1 / eq. 20-22)."""

from __future__ import annotations

from typing import Callable, NamedTuple, Union, Unpack

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.cells import _dense
from jaxrnn.cells import _lstm_common
from jaxrnn.cells import _parts
from jaxrnn.cells._lstm_common import LSTMCarry
from jaxrnn.cells.options import RecurrentOptions, resolve
from jaxrnn.types import Cell


class LayerNormLSTMParams(NamedTuple):
  """Parameters of :func:`layer_norm_lstm`. Gate blocks are ordered ``[i, f, g, o]``.

  The paper's two gate-side LayerNorm shifts ``β_1 + β_2`` and the bias ``b`` are one parameter, ``b``.
  """

  w_i: jax.Array  # [F, 4H] input kernel
  w_h: jax.Array  # [H, 4H] recurrent kernel
  b: jax.Array  # [4H] bias (β_1 + β_2 + b of the paper; forget block initialised to forget_bias)
  gain_i: jax.Array  # [4H] LayerNorm gain of x W_i (α_2), initialised to ones
  gain_h: jax.Array  # [4H] LayerNorm gain of h W_h (α_1), initialised to ones
  gain_c: jax.Array  # [H] LayerNorm gain of the cell (α_3), initialised to ones
  b_c: jax.Array  # [H] LayerNorm shift of the cell (β_3), initialised to zeros


def layer_norm_lstm(
    hidden_size: int,
    *,
    per_gate: bool = True,
    epsilon: float = 1e-5,
    forget_bias: float = 1.0,
    activation: Union[str, Callable] = "tanh",
    gate_activation: Union[str, Callable] = "sigmoid",
    **options: Unpack[RecurrentOptions],
) -> Cell:
  r"""The LSTM with layer normalisation of both matrix products and of the cell (Ba, Kiros & Hinton 2016).

  .. math::

     [i, f, g, o]_t &= \mathrm{LN}(x_t W_i; \alpha_2) + \mathrm{LN}(h_{t-1} W_h; \alpha_1) + b \\
     c_t &= \sigma(f_t) \odot c_{t-1} + \sigma(i_t) \odot \tanh(g_t) \\
     h_t &= \sigma(o_t) \odot \tanh(\mathrm{LN}(c_t; \alpha_3, \beta_3))

  with :math:`\mathrm{LN}(z; \alpha, \beta) = \alpha \odot (z - \mu(z)) / \sqrt{\sigma^2(z) + \epsilon} + \beta`.
  ``x_t W_i`` does not depend on the carry, so its LayerNorm is hoisted out of the time loop with the matmul.
  The LayerNorm statistics run in the promoted dtype of the activations and the (float32) gains.

  Args:
    hidden_size: ``H``.
    per_gate: normalise each gate's ``H`` pre-activations separately (as TensorFlow's
      ``LayerNormBasicLSTMCell``); ``False`` normalises the ``4H`` vector at once (the paper's equation).
    epsilon: added to the variance.
    forget_bias: added to the forget block of ``b`` at initialisation.
    activation: the candidate and output nonlinearity.
    gate_activation: the gates' nonlinearity.
    **options: :class:`jaxrnn.cells.options.RecurrentOptions`: ``kernel_init``, ``recurrent_kernel_init`` and
      ``bias_init`` draw the gate blocks of ``w_i: [F, 4H]``, ``w_h: [H, 4H]`` and ``b: [4H]`` (the LayerNorm gains
      and shifts start at ones and zeros); ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with :class:`LayerNormLSTMParams` and ``LSTMCarry(h, c)``.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.layer_norm_lstm(4)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> carry, h = cell(params, cell.initial_carry(params, batch_shape=(2,)), jnp.ones((2, 3)))
    >>> h.shape, carry.c.shape
    ((2, 4), (2, 4))
  """
  H, act, gate_act = _dense.hyper(hidden_size, activation, gate_activation)
  opts = resolve("layer_norm_lstm", options)
  dtype, param_dtype, precision = opts.dtype, opts.param_dtype, opts.precision
  if not isinstance(per_gate, bool):
    raise TypeError(f"per_gate must be a bool, got {per_gate!r}")
  if not epsilon > 0:
    raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
  groups = 4 if per_gate else 1

  def init_norms(keys, input_size):
    del keys, input_size
    ones = lambda n: jnp.ones((n,), param_dtype)
    return dict(gain_i=ones(4 * H), gain_h=ones(4 * H), gain_c=ones(H), b_c=jnp.zeros((H,), param_dtype))

  init, initial_carry, _, check_params, check_step = _dense.dense_parts(
      H, 4, LayerNormLSTMParams, LSTMCarry, opts, forget_block=1, forget_bias=forget_bias, init_extra=init_norms,
      use_bias=True)

  def input_transform(params, xs):
    check_params(params)
    xs = _checks.step_input("x", xs, (params.w_i.shape[0],))
    u = _dense.project(xs, params.w_i, None, dtype, precision)
    return _lstm_common.layer_norm(u, params.gain_i, params.b, epsilon, groups)

  def step_transformed(params, carry, u):
    u = check_step(params, carry, u)
    cdt = carry.c.dtype
    hw = _dense.recurrent(carry.h, params.w_h, dtype, precision)
    z = u.astype(cdt) + _lstm_common.layer_norm(hw, params.gain_h, None, epsilon, groups).astype(cdt)
    c, o = _lstm_common.gates(z, carry.c, act, gate_act)
    c_hat = _lstm_common.layer_norm(c, params.gain_c, params.b_c, epsilon).astype(cdt)
    h = o * act(c_hat)
    return LSTMCarry(h=h, c=c), h

  return _parts.transformed_cell(init, initial_carry, input_transform, step_transformed,
                                 name="layer_norm_lstm")
