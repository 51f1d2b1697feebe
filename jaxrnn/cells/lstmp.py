"""The LSTM with a recurrent projection layer, LSTMP (Sak, Senior & Beaufays 2014; PyTorch's ``proj_size``)."""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Union, Unpack

import jax

from jaxrnn import _checks
from jaxrnn import initializers
from jaxrnn.cells import _dense
from jaxrnn.cells import _fused_scan
from jaxrnn.cells import _lstm_common
from jaxrnn.cells import _native_scan
from jaxrnn.cells import _parts
from jaxrnn.cells.options import RecurrentOptions, resolve
from jaxrnn.types import ALL_OPTIONS, Cell


class LSTMPParams(NamedTuple):
  """Parameters of :func:`lstmp`. Gate blocks are ordered ``[i, f, g, o]`` (PyTorch's order)."""

  w_i: jax.Array  # [F, 4H] input kernel
  w_h: jax.Array  # [P, 4H] recurrent kernel (reads the projected state)
  b: Optional[jax.Array]  # [4H] bias; None if use_bias=False
  w_r: jax.Array  # [H, P] projection (PyTorch: weight_hr_l0.T)


class LSTMPCarry(NamedTuple):
  """Carry of :func:`lstmp`: the projected output ``h`` is narrower than the cell ``c``."""

  h: jax.Array  # [*B, P] projected hidden state, also the output
  c: jax.Array  # [*B, H] cell state


def lstmp(
    hidden_size: int,
    proj_size: int,
    *,
    forget_bias: Optional[float] = None,
    use_bias: bool = True,
    activation: Union[str, Callable] = "tanh",
    gate_activation: Union[str, Callable] = "sigmoid",
    projection_init: Callable = initializers.lecun_normal(),
    **options: Unpack[RecurrentOptions],
) -> Cell:
  r"""The LSTM with a projection of its output (LSTMP), as PyTorch's ``nn.LSTM(proj_size=P)``.

  .. math::

     [i, f, g, o]_t &= x_t W_i + h_{t-1} W_h + b \qquad (h_{t-1} \in \mathbb{R}^P) \\
     c_t &= \sigma(f_t) \odot c_{t-1} + \sigma(i_t) \odot \tanh(g_t) \\
     h_t &= (\sigma(o_t) \odot \tanh(c_t))\, W_r \qquad (W_r: [H, P])

  Sak, Senior & Beaufays (2014), "Long Short-Term Memory Recurrent Neural Network Architectures for Large Scale
  Acoustic Modeling". The recurrent kernel is ``[P, 4H]`` instead of ``[H, 4H]``; the output and the carried
  ``h`` are ``[*B, P]``, the cell ``c`` stays ``[*B, H]``. PyTorch's weights map as ``w_i = weight_ih.T``,
  ``w_h = weight_hh.T``, ``b = bias_ih + bias_hh``, ``w_r = weight_hr.T``.

  The cell has a whole-sequence path (``cell.sequence``, used by :func:`jaxrnn.unroll` in ``mode="auto"``): on CPU
  the native loop where the call fits (:class:`jaxrnn.RunOptions` ``native``), else the scan of ``step``.

  Args:
    hidden_size: ``H``, the cell width.
    proj_size: ``P``, the output and recurrent width (PyTorch requires ``P < H``; any ``P`` works here).
    forget_bias: added to the forget gate's bias at initialisation; ``None`` means 1.0 with a bias.
    use_bias: whether the cell has the bias ``b``.
    activation: the candidate and output nonlinearity.
    gate_activation: the gates' nonlinearity.
    projection_init: initialiser of ``w_r: [H, P]``.
    **options: :class:`jaxrnn.cells.options.RecurrentOptions`: ``kernel_init``, ``recurrent_kernel_init`` and
      ``bias_init`` draw the gate blocks of ``w_i: [F, 4H]``, ``w_h: [P, 4H]`` (``[P, H]`` blocks) and ``b: [4H]``;
      ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with :class:`LSTMPParams` and :class:`LSTMPCarry` ``(h [P], c [H])``.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.lstmp(5, 2)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> carry, h = cell(params, cell.initial_carry(params, batch_shape=(4,)), jnp.ones((4, 3)))
    >>> h.shape, carry.c.shape
    ((4, 2), (4, 5))
  """
  H, act, gate_act = _dense.hyper(hidden_size, activation, gate_activation)
  opts = resolve("lstmp", options)
  dtype, param_dtype, precision = opts.dtype, opts.param_dtype, opts.precision
  P = _checks.positive_int("proj_size", proj_size)
  forget_bias = _dense.forget_bias(forget_bias, use_bias)

  def init(key, input_size):  # its own key order: four independent draws
    input_size = _dense.check_init_args(key, input_size)
    k_i, k_h, k_b, k_r = jax.random.split(key, 4)
    w_i = _dense.init_blocks(k_i, opts.kernel_init, input_size, H, 4, param_dtype)
    w_h = _dense.init_blocks(k_h, opts.recurrent_kernel_init, P, H, 4, param_dtype)
    b = opts.bias_init(k_b, (4 * H,), param_dtype).at[H:2 * H].add(forget_bias) if use_bias else None
    w_r = _dense.init_blocks(k_r, projection_init, H, P, 1, param_dtype)
    return LSTMPParams(w_i=w_i, w_h=w_h, b=b, w_r=w_r)

  _, initial_carry, input_transform, check_dense, check_step = _dense.dense_parts(
      H, 4, LSTMPParams, LSTMPCarry, opts, init=init, recurrent_rows=P, carry_features=dict(h=(P,), c=(H,)),
      use_bias=use_bias)

  def check_params(params):
    check_dense(params)
    _checks.param_shape("params.w_r", params.w_r, (H, P))

  def step_transformed(params, carry, u):
    u = check_step(params, carry, u)
    _checks.param_shape("params.w_r", params.w_r, (H, P))
    z = u + _dense.recurrent(carry.h, params.w_h, dtype, precision)
    z = z.astype(carry.c.dtype)
    c, o = _lstm_common.gates(z, carry.c, act, gate_act)
    h = _dense.recurrent(o * act(c), params.w_r, dtype, precision).astype(carry.h.dtype)
    return LSTMPCarry(h=h, c=c), h

  config = _dense.config("lstmp", activation=activation, gate_activation=gate_activation, hidden_size=H,
                         proj_size=P, use_bias=bool(use_bias))
  # The sequence path: the native loop where the call fits (two products a step, the second the projection), else
  # the scan of step (which honours every option).
  scanned = _parts.transformed_cell(init, initial_carry, input_transform, step_transformed, name="lstmp",
                                    config=config)
  native_kind = "lstmp" if _native_scan.standard(activation, gate_activation, dtype) else None
  run = _native_scan.with_native(native_kind, False, input_transform, _native_scan.step_scan(scanned))
  return scanned._replace(sequence=_fused_scan.checked(run, check_params, LSTMPCarry, dict(h=P, c=H), "lstmp",
                                                      honours=ALL_OPTIONS))
