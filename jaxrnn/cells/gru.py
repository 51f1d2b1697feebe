"""Gated recurrent unit (Cho et al. 2014), with the reset gate after or before the recurrent matmul."""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Union, Unpack

import jax
import jax.numpy as jnp

from jaxrnn.cells import _dense
from jaxrnn.cells import _fused_scan
from jaxrnn.cells import _native_scan
from jaxrnn.cells import _parts
from jaxrnn.cells.options import RecurrentOptions, resolve
from jaxrnn.types import ALL_OPTIONS, NATIVE, Cell


class GRUParams(NamedTuple):
  """Parameters of :func:`gru`. Gate blocks are ordered ``[r, z, n]`` (PyTorch's order)."""

  w_i: jax.Array  # [F, 3H] input kernel
  w_h: jax.Array  # [H, 3H] recurrent kernel
  b: Optional[jax.Array]  # [3H] input-side bias (PyTorch: b_ih + [b_hr, b_hz, 0]); None if use_bias=False
  b_hn: Optional[jax.Array]  # [H] recurrent bias of the candidate (PyTorch: b_hh[2H:]); None if use_bias=False


class GRUCarry(NamedTuple):
  """Carry of :func:`gru`."""

  h: jax.Array  # [*B, H] hidden state, also the output


def gru(
    hidden_size: int,
    *,
    reset_after: bool = True,
    use_bias: bool = True,
    activation: Union[str, Callable] = "tanh",
    gate_activation: Union[str, Callable] = "sigmoid",
    **options: Unpack[RecurrentOptions],
) -> Cell:
  r"""The gated recurrent unit.

  .. math::

     r_t &= \sigma(x_t W_{ir} + h_{t-1} W_{hr} + b_r) \\
     z_t &= \sigma(x_t W_{iz} + h_{t-1} W_{hz} + b_z) \\
     n_t &= \tanh(x_t W_{in} + b_n + r_t \odot (h_{t-1} W_{hn} + b_{hn}))
        \quad\text{(reset\_after=True: cuDNN, PyTorch, Flax)} \\
     n_t &= \tanh(x_t W_{in} + b_n + (r_t \odot h_{t-1}) W_{hn} + b_{hn})
        \quad\text{(reset\_after=False: Cho et al. 2014)} \\
     h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

  ``z`` here is the *keep* gate as in Cho et al. and PyTorch (colah writes the same cell with ``z`` and
  ``1 - z`` swapped). The kernels are fused, ``[F, 3H]`` and ``[H, 3H]`` in gate order ``[r, z, n]``.

  With ``reset_after=True`` the cell has a whole-sequence path (``cell.sequence``, used by :func:`jaxrnn.unroll`
  in ``mode="auto"``): the same scan with a ``jax.custom_jvp`` whose backward loop keeps only ``dh_t W_h^T``;
  the weight and input gradients are large products after it, as :func:`jaxrnn.lstm`'s. On CPU both forms run the
  native loop where the call fits (:class:`jaxrnn.RunOptions` ``native``; ``reset_after=False`` has two products a
  step, the second on ``r h``), else ``reset_after=False`` scans ``step``.

  Args:
    hidden_size: ``H``.
    reset_after: apply the reset gate after the recurrent matmul (``True``) or to ``h`` before it (``False``).
    use_bias: whether the cell has the biases ``b`` and ``b_hn``.
    activation: the candidate nonlinearity (``"tanh"`` or a callable).
    gate_activation: the gates' nonlinearity (``"sigmoid"`` or a callable).
    **options: :class:`jaxrnn.cells.options.RecurrentOptions`: ``kernel_init``, ``recurrent_kernel_init`` and
      ``bias_init`` draw the ``[r, z, n]`` blocks of ``w_i: [F, 3H]`` and ``w_h: [H, 3H]``, and ``b: [3H]``,
      ``b_hn: [H]``; ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``GRUParams`` and ``GRUCarry(h)``.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.gru(4, reset_after=False)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> carry, h = cell(params, cell.initial_carry(params), jnp.ones(3))
    >>> h.shape
    (4,)
  """
  H, act, gate_act = _dense.hyper(hidden_size, activation, gate_activation)
  opts = resolve("gru", options)
  dtype, param_dtype, precision = opts.dtype, opts.param_dtype, opts.precision

  def init_b_hn(keys, input_size):
    del input_size
    return dict(b_hn=opts.bias_init(keys[0], (H,), param_dtype) if use_bias else None)

  init, initial_carry, input_transform, _check_params, check_step = _dense.dense_parts(
      H, 3, GRUParams, GRUCarry, opts, extra_keys=1, init_extra=init_b_hn, use_bias=use_bias)

  def update(carry, u, hw_rz, recurrent_n):
    """The GRU's gates from ``u`` and ``hw_rz = h W_h[:, :2H]``; ``recurrent_n(r)``: the candidate's recurrent term."""
    h_prev = carry.h
    cdt = h_prev.dtype
    u_r, u_z, u_n = jnp.split(u.astype(cdt), 3, axis=-1)
    hw_r, hw_z = jnp.split(hw_rz.astype(cdt), 2, axis=-1)
    r = gate_act(u_r + hw_r)
    z = gate_act(u_z + hw_z)
    n = act(u_n + recurrent_n(r))
    h = (1 - z) * n + z * h_prev
    return GRUCarry(h=h), h

  def pointwise(params, carry, u, hw):  # reset_after: everything after h W_h (the fused path calls it too)
    hw_n = _dense.add_bias(hw[..., 2 * H:].astype(carry.h.dtype), params.b_hn)
    return update(carry, u, hw[..., :2 * H], lambda r: r * hw_n)

  def step_transformed(params, carry, u):
    u = check_step(params, carry, u)
    h_prev = carry.h
    if reset_after:
      return pointwise(params, carry, u, _dense.recurrent(h_prev, params.w_h, dtype, precision))
    hw_rz = _dense.recurrent(h_prev, params.w_h[:, :2 * H], dtype, precision)
    return update(carry, u, hw_rz, lambda r: _dense.add_bias(
        _dense.recurrent(r * h_prev, params.w_h[:, 2 * H:], dtype, precision).astype(h_prev.dtype), params.b_hn))

  name = "gru" if reset_after else "gru_reset_before"
  config = _dense.config("gru", activation=activation, gate_activation=gate_activation, hidden_size=H,
                         reset_after=bool(reset_after), use_bias=bool(use_bias))
  native_kind = name if _native_scan.standard(activation, gate_activation, dtype) else None
  if reset_after:
    run = _native_scan.fused_or_native(native_kind, input_transform, pointwise, ("b_hn",), dtype, precision)
    sequence = _fused_scan.checked(run, _check_params, GRUCarry, H, name, honours=NATIVE)
    return _parts.transformed_cell(init, initial_carry, input_transform, step_transformed, sequence=sequence,
                                   name=name, config=config)
  # reset_after=False: the native loop where the call fits (two products a step, the second on r h), else the scan
  # of step (which honours every option).
  scanned = _parts.transformed_cell(init, initial_carry, input_transform, step_transformed, name=name, config=config)
  run = _native_scan.with_native(native_kind, False, input_transform, _native_scan.step_scan(scanned))
  return scanned._replace(sequence=_fused_scan.checked(run, _check_params, GRUCarry, H, name, honours=ALL_OPTIONS))
