"""Long short-term memory (Hochreiter & Schmidhuber 1997; forget gate: Gers, Schmidhuber & Cummins 2000)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union, Unpack

import jax

from jaxrnn.cells import _dense
from jaxrnn.cells import _fused_scan
from jaxrnn.cells import _lstm_common
from jaxrnn.cells import _native_scan
from jaxrnn.cells import _parts
from jaxrnn.cells._lstm_common import LSTMCarry
from jaxrnn.cells.options import RecurrentOptions, resolve
from jaxrnn.cells.peephole_lstm import peephole_lstm
from jaxrnn.kernels import choice
from jaxrnn.kernels import cudnn_lstm
from jaxrnn.types import NATIVE, Cell


class LSTMParams(NamedTuple):
  """Parameters of :func:`lstm`. Gate blocks are ordered ``[i, f, g, o]`` (PyTorch's order)."""

  w_i: jax.Array  # [F, 4H] input kernel
  w_h: jax.Array  # [H, 4H] recurrent kernel
  b: Optional[jax.Array]  # [4H] bias (forget block initialised to forget_bias); None if use_bias=False


def lstm(
    hidden_size: int,
    *,
    variant: Optional[Any] = None,
    forget_bias: Optional[float] = None,
    use_bias: bool = True,
    activation: Union[str, Callable] = "tanh",
    gate_activation: Union[str, Callable] = "sigmoid",
    **options: Unpack[RecurrentOptions],
) -> Cell:
  r"""The LSTM exactly as colah's "Understanding LSTM Networks" writes it, with one fused ``4H`` matmul.

  .. math::

     f_t &= \sigma(x_t W_{if} + h_{t-1} W_{hf} + b_f) \\
     i_t &= \sigma(x_t W_{ii} + h_{t-1} W_{hi} + b_i) \\
     \tilde c_t &= \tanh(x_t W_{ig} + h_{t-1} W_{hg} + b_g) \\
     c_t &= f_t \odot c_{t-1} + i_t \odot \tilde c_t \\
     o_t &= \sigma(x_t W_{io} + h_{t-1} W_{ho} + b_o) \\
     h_t &= o_t \odot \tanh(c_t)

  The kernels are fused, ``W_i = [W_ii | W_if | W_ig | W_io]: [F, 4H]`` (PyTorch's gate order), so a step is one
  ``[*B, F] @ [F, 4H]`` (hoisted out of the time loop by :func:`jaxrnn.unroll` on GPU/TPU) and one
  ``[*B, H] @ [H, 4H]``.
  PyTorch's two biases ``b_ih + b_hh`` are one ``b`` here.

  The cell has a whole-sequence path (``cell.sequence``, used by :func:`jaxrnn.unroll` in ``mode="auto"``): the
  same scan, with a ``jax.custom_jvp`` whose backward loop keeps only ``dz_t W_h^T`` and computes the weight and
  input gradients as large products after the loop, as cuDNN does (``jaxrnn/cells/_fused_scan.py``). Forward- and
  reverse-mode AD, ``vmap`` and higher orders work; ``remat`` makes ``unroll`` scan ``step`` instead. On GPU,
  ``kernel="cudnn"`` (:class:`jaxrnn.RunOptions`) runs the path through cuDNN instead
  (:mod:`jaxrnn.kernels.cudnn_lstm`: float32, tanh/sigmoid).

  Args:
    hidden_size: ``H``.
    variant: ``None`` (this cell), or a variant of Greff et al. (2015) by name (``"vanilla"``, ``"NIG"``,
      ``"NFG"``, ``"NOG"``, ``"NIAF"``, ``"NOAF"``, ``"NP"``, ``"CIFG"``, ``"FGR"``) or as a
      :class:`jaxrnn.LSTMVariant` of flags: then the cell is :func:`jaxrnn.peephole_lstm` with these arguments
      (``PeepholeLSTMParams``; note that its ``"vanilla"`` has peepholes and ``"NP"`` is this cell's math).
    forget_bias: added to the forget gate's bias at initialisation (Jozefowicz, Zaremba & Sutskever 2015);
      ``None`` means 1.0 with a bias and 0.0 without one (setting it with ``use_bias=False`` is an error).
    use_bias: whether the cell has the bias ``b`` (PyTorch's ``bias=False`` is ``use_bias=False``).
    activation: the candidate and output nonlinearity (``"tanh"`` or a callable).
    gate_activation: the gates' nonlinearity (``"sigmoid"``, ``"hard_sigmoid"`` or a callable).
    **options: :class:`jaxrnn.cells.options.RecurrentOptions`: ``kernel_init``, ``recurrent_kernel_init`` and
      ``bias_init`` draw the ``[i, f, g, o]`` blocks of ``w_i: [F, 4H]`` and ``w_h: [H, 4H]``, and ``b: [4H]``
      (then ``forget_bias`` is added); ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``LSTMParams`` and ``LSTMCarry(h, c)``; ``step`` returns ``(carry, h)``
    (with a ``variant``: see :func:`jaxrnn.peephole_lstm`).

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.lstm(8)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> carry = cell.initial_carry(params, batch_shape=(2,))
    >>> carry, h = cell(params, carry, jnp.ones((2, 3)))
    >>> h.shape, carry.c.shape
    ((2, 8), (2, 8))
    >>> jaxrnn.lstm(8, variant="NOAF").name
    'lstm_NOAF'
  """
  opts = resolve("lstm", options)
  if variant is not None:
    return peephole_lstm(hidden_size, variant=variant, forget_bias=forget_bias, use_bias=use_bias,
                         activation=activation, gate_activation=gate_activation, **options)
  H, act, gate_act = _dense.hyper(hidden_size, activation, gate_activation)
  dtype, precision = opts.dtype, opts.precision
  init, initial_carry, input_transform, _check_params, check_step = _dense.dense_parts(
      H, 4, LSTMParams, LSTMCarry, opts, forget_block=1, forget_bias=_dense.forget_bias(forget_bias, use_bias),
      use_bias=use_bias)

  def pointwise(params, carry, u, hw):  # everything after the recurrent product: the fused path calls it too
    del params  # the LSTM's gate math reads no params: b is in input_transform
    z = (u + hw).astype(carry.c.dtype)
    c, o = _lstm_common.gates(z, carry.c, act, gate_act)
    h = o * act(c)
    return LSTMCarry(h=h, c=c), h

  def step_transformed(params, carry, u):
    u = check_step(params, carry, u)
    return pointwise(params, carry, u, _dense.recurrent(carry.h, params.w_h, dtype, precision))

  standard = activation == "tanh" and gate_activation == "sigmoid"
  cudnn = choice.Route(
      misfit=lambda p, c, xs, options: cudnn_lstm.misfit(p, c, xs, options, standard_activations=standard,
                                                         dtype=dtype, precision=precision),
      run=lambda p, c, xs, mask: cudnn_lstm.run(p, c, xs, mask, precision))
  native_kind = "lstm" if _native_scan.standard(activation, gate_activation, dtype) else None
  run = _native_scan.fused_or_native(native_kind, input_transform, pointwise, (), dtype, precision)
  sequence = _fused_scan.checked(run, _check_params, LSTMCarry, H, "lstm", {"cudnn": cudnn}, NATIVE)

  config = _dense.config("lstm", activation=activation, gate_activation=gate_activation, hidden_size=H,
                         use_bias=bool(use_bias))
  return _parts.transformed_cell(init, initial_carry, input_transform, step_transformed, sequence=sequence,
                                 name="lstm", config=config)
