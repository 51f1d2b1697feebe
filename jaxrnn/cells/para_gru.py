"""ParaGRU: the GRU with diagonal recurrent matrices (Danieli et al. 2025, ParaRNN)."""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Union, Unpack

import jax
import jax.numpy as jnp

from jaxrnn.cells import _dense
from jaxrnn.cells import _para
from jaxrnn.cells.options import DenseOptions, resolve
from jaxrnn.types import Cell


class ParaGRUParams(NamedTuple):
  """Parameters of :func:`para_gru`. Gate blocks are ordered ``[r, z, n]``."""

  w: jax.Array  # [F, 3H] input kernel
  b: Optional[jax.Array]  # [3H] bias; None if use_bias=False
  a: jax.Array  # [3H] diagonal recurrent weights of r, z and n


class ParaGRUCarry(NamedTuple):
  """Carry of :func:`para_gru`."""

  h: jax.Array  # [*B, H] hidden state, also the output


def uniform_init(scale: float) -> Callable:
  """An initialiser drawing uniformly from ``[-scale, scale]`` (the diagonal recurrent weights)."""

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -scale, scale)

  return init


def para_gru(
    hidden_size: int,
    *,
    use_bias: bool = True,
    activation: Union[str, Callable] = "tanh",
    gate_activation: Union[str, Callable] = "sigmoid",
    recurrent_init: Callable = uniform_init(1.0),
    **options: Unpack[DenseOptions],
) -> Cell:
  r"""ParaGRU: a GRU whose recurrent matrices are diagonal, so ``∂h_t/∂h_{t-1}`` is diagonal.

  .. math::

     r_t &= \sigma(x_t W_r + a_r \odot h_{t-1} + b_r) \\
     z_t &= \sigma(x_t W_z + a_z \odot h_{t-1} + b_z) \\
     n_t &= \tanh(x_t W_n + b_n + r_t \odot a_n \odot h_{t-1}) \\
     h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

  Danieli et al. 2025 ("ParaRNN: Unlocking parallel training of nonlinear RNNs for large language models") make
  the GRU's recurrent matrices diagonal so that Newton's method over the whole sequence needs only diagonal
  Jacobians: the cell declares :attr:`jaxrnn.Cell.carry_jacobian_diagonal`, so
  ``unroll(..., newton=jaxrnn.ParallelNewton(jacobian="diagonal"))`` is exact Newton at ``O(T H)`` per iteration.
  Units interact only through the next layer (as in :func:`jaxrnn.indrnn`).

  Args:
    hidden_size: ``H``.
    use_bias: whether the cell has the bias ``b``.
    activation: the candidate nonlinearity (``"tanh"`` or a callable).
    gate_activation: the gates' nonlinearity (``"sigmoid"`` or a callable).
    recurrent_init: draws ``a: [3H]`` (default uniform in ``[-1, 1]``).
    **options: :class:`jaxrnn.cells.options.DenseOptions`: ``kernel_init`` and ``bias_init`` draw ``w: [F, 3H]`` (per
      ``[r, z, n]`` block) and ``b: [3H]``; ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``ParaGRUParams`` and ``ParaGRUCarry(h)``.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.para_gru(4)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> xs = jax.random.normal(jax.random.key(1), (2, 30, 3))
    >>> _, hs = jaxrnn.unroll(cell, params, None, xs, newton=jaxrnn.ParallelNewton(jacobian="diagonal"))
    >>> bool(jnp.allclose(hs, jaxrnn.unroll(cell, params, None, xs)[1], atol=1e-5))
    True
  """
  H, act, gate_act = _dense.hyper(hidden_size, activation, gate_activation)
  opts = resolve("para_gru", options, DenseOptions)

  parts = _para.parts(H, ParaGRUParams, ParaGRUCarry, opts, recurrent_init=recurrent_init, use_bias=use_bias)

  def step_transformed(params, carry, u):
    u = parts.check_step(params, carry, u)
    h_prev = carry.h
    (u_r, u_z, u_n), (ah_r, ah_z, ah_n) = _para.gate_inputs(params, u, h_prev)
    r = gate_act(u_r + ah_r)
    z = gate_act(u_z + ah_z)
    n = act(u_n + r * ah_n)
    h = (1 - z) * n + z * h_prev
    return ParaGRUCarry(h=h), h

  config = _dense.config("para_gru", activation=activation, gate_activation=gate_activation, hidden_size=H,
                         use_bias=bool(use_bias))
  return parts.cell(step_transformed, name="para_gru", config=config, elementwise=True)
