"""The Elman recurrent network (Elman 1990) and the IRNN (Le, Jaitly & Hinton 2015)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Union, Unpack

import jax

from jaxrnn import initializers
from jaxrnn.cells import _dense
from jaxrnn.cells import _fused_scan
from jaxrnn.cells import _native_scan
from jaxrnn.cells import _parts
from jaxrnn.cells.options import RecurrentOptions, resolve
from jaxrnn.types import ALL_OPTIONS, Cell


class SimpleRNNParams(NamedTuple):
  """Parameters of :func:`simple_rnn`."""

  w_i: jax.Array  # [F, H] input kernel
  w_h: jax.Array  # [H, H] recurrent kernel
  b: Optional[jax.Array]  # [H] bias (PyTorch: b_ih + b_hh); None if use_bias=False


class SimpleRNNCarry(NamedTuple):
  """Carry of :func:`simple_rnn`."""

  h: jax.Array  # [*B, H] hidden state, also the output


def simple_rnn(
    hidden_size: int,
    *,
    activation: Union[str, Callable] = "tanh",
    use_bias: bool = True,
    **options: Unpack[RecurrentOptions],
) -> Cell:
  r"""The vanilla (Elman) recurrent cell, colah's "repeating module with a single tanh layer".

  .. math::  h_t = \phi(x_t W_i + h_{t-1} W_h + b)

  with :math:`\phi` = ``tanh`` (default) or ``relu`` (PyTorch's ``nonlinearity``), or any callable.

  Args:
    hidden_size: ``H``.
    activation: ``"tanh"``, ``"relu"`` or a callable.
    use_bias: whether the cell has the bias ``b``.
    **options: :class:`jaxrnn.cells.options.RecurrentOptions`: ``kernel_init``, ``recurrent_kernel_init`` and
      ``bias_init`` draw ``W_i: [F, H]``, ``W_h: [H, H]`` and ``b: [H]``
      (``recurrent_kernel_init=jaxrnn.initializers.identity()`` makes an IRNN, see :func:`irnn`); ``dtype``,
      ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``SimpleRNNParams`` and ``SimpleRNNCarry(h)``.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.simple_rnn(4, activation="relu")
    >>> params = cell.init(jax.random.key(0), 3)
    >>> carry, h = cell(params, cell.initial_carry(params, (5,)), jnp.ones((5, 3)))
    >>> h.shape
    (5, 4)
  """
  H, act, _ = _dense.hyper(hidden_size, activation)
  opts = resolve("simple_rnn", options)
  dtype, precision = opts.dtype, opts.precision
  init, initial_carry, input_transform, check_params, check_step = _dense.dense_parts(
      H, 1, SimpleRNNParams, SimpleRNNCarry, opts, use_bias=use_bias)

  def step_transformed(params, carry, u):
    u = check_step(params, carry, u)
    z = u + _dense.recurrent(carry.h, params.w_h, dtype, precision)
    h = act(z.astype(carry.h.dtype))
    return SimpleRNNCarry(h=h), h

  # The sequence path: the native loop where the call fits, else the scan of step (which honours every option).
  scanned = _parts.transformed_cell(init, initial_carry, input_transform, step_transformed, name="simple_rnn")
  native_kind = "simple_rnn" if _native_scan.standard(activation, None, dtype, ("tanh", "relu")) else None
  run = _native_scan.with_native(native_kind, activation == "relu", input_transform, _native_scan.step_scan(scanned))
  sequence = _fused_scan.checked(run, check_params, SimpleRNNCarry, H, "simple_rnn", honours=ALL_OPTIONS)

  name = activation if isinstance(activation, str) else getattr(activation, "__name__", "custom")
  config = _dense.config("simple_rnn", activation=activation, hidden_size=H, use_bias=bool(use_bias))
  return scanned._replace(sequence=sequence, name=f"simple_rnn_{name}", config=config)


def irnn(hidden_size: int, *, scale: float = 1.0, **kwargs: Any) -> Cell:
  r"""The IRNN of Le, Jaitly & Hinton 2015: ReLU units, recurrent kernel initialised to ``scale * I``, zero bias.

  .. math::  h_t = \mathrm{relu}(x_t W_i + h_{t-1} W_h + b), \quad W_h^{(0)} = \text{scale} \cdot I

  Args:
    hidden_size: ``H``.
    scale: the identity's scale (1.0 in the paper; smaller, e.g. 0.01, for the "np-RNN" style).
    **kwargs: passed to :func:`simple_rnn` (``activation`` and ``recurrent_kernel_init`` are fixed here).

  >>> import jax, jaxrnn
  >>> params = jaxrnn.irnn(3).init(jax.random.key(0), 2)
  >>> params.w_h.tolist()
  [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
  """
  for fixed in ("activation", "recurrent_kernel_init"):
    if fixed in kwargs:
      raise ValueError(f"irnn fixes {fixed}; use simple_rnn to choose it")
  cell = simple_rnn(hidden_size, activation="relu", recurrent_kernel_init=initializers.identity(scale), **kwargs)
  assert cell.config is not None  # simple_rnn declares its config
  return cell._replace(name="irnn", config=_dense.config("irnn", **dict(cell.config.kwargs), scale=float(scale)))
