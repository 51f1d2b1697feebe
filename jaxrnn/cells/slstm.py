"""The sLSTM of xLSTM (Beck et al. 2024): exponential gating with a stabiliser state and a normaliser."""

from __future__ import annotations

from typing import NamedTuple, Unpack

import jax
import jax.numpy as jnp

from jaxrnn.cells import _dense
from jaxrnn.cells import _parts
from jaxrnn.cells.options import RecurrentOptions, resolve
from jaxrnn.types import Cell


class SLSTMParams(NamedTuple):
  """Parameters of :func:`slstm`. Gate blocks are ordered ``[z, i, f, o]``."""

  w_i: jax.Array  # [F, 4H] input kernel
  w_h: jax.Array  # [H, 4H] recurrent kernel
  b: jax.Array  # [4H] bias (the forget block starts at forget_bias)


class SLSTMCarry(NamedTuple):
  """Carry of :func:`slstm` (``c`` and ``n`` in the scale ``exp(-m)``)."""

  h: jax.Array  # [*B, H] hidden state, also the output
  c: jax.Array  # [*B, H] cell state
  n: jax.Array  # [*B, H] normaliser state
  m: jax.Array  # [*B, H] stabiliser state


def slstm(
    hidden_size: int,
    *,
    forget_gate: str = "sigmoid",
    forget_bias: float = 3.0,
    **options: Unpack[RecurrentOptions],
) -> Cell:
  r"""sLSTM: a scalar-memory LSTM with exponential input gate, normaliser and stabiliser.

  .. math::

     z_t &= \tanh(\tilde z_t), \quad o_t = \sigma(\tilde o_t), \quad
       \tilde g_t = x_t W_g + h_{t-1} R_g + b_g \ (g \in \{z, i, f, o\}) \\
     \log f_t &= \log \sigma(\tilde f_t) \ (\text{or } \tilde f_t \text{ with forget\_gate="exp"}), \quad
       m_t = \max(\log f_t + m_{t-1}, \tilde i_t) \\
     i'_t &= \exp(\tilde i_t - m_t), \quad f'_t = \exp(\log f_t + m_{t-1} - m_t) \\
     c_t &= f'_t c_{t-1} + i'_t z_t, \quad n_t = f'_t n_{t-1} + i'_t, \quad h_t = o_t \odot c_t / n_t

  The gates read ``h_{t-1}``, so the sLSTM has no parallel-in-time form: it has no ``sequence`` path and
  ``jaxrnn.unroll`` always scans ``step`` (the input projection is hoisted out of the loop).

  Args:
    hidden_size: ``H``.
    forget_gate: ``"sigmoid"`` or ``"exp"``, the forget gate's activation.
    forget_bias: the initial bias of the forget gate.
    **options: :class:`jaxrnn.cells.options.RecurrentOptions`: ``kernel_init``, ``recurrent_kernel_init`` and
      ``bias_init`` draw the ``[z, i, f, o]`` blocks of ``w_i: [F, 4H]``, ``w_h: [H, 4H]`` and ``b: [4H]``; the forget
      block of ``b`` then gets ``forget_bias``; ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``SLSTMParams`` and ``SLSTMCarry(h, c, n, m)``.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.slstm(4)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> carry, hs = jaxrnn.unroll(cell, params, cell.initial_carry(params), jnp.ones((5, 3)))
    >>> hs.shape, carry.m.shape
    ((5, 4), (4,))
  """
  if forget_gate not in ("sigmoid", "exp"):
    raise ValueError(f"forget_gate must be 'sigmoid' or 'exp', got {forget_gate!r}")
  H = _dense.hyper(hidden_size).hidden_size
  opts = resolve("slstm", options)
  dtype, precision = opts.dtype, opts.precision
  init, initial_carry, input_transform, _, check_step = _dense.dense_parts(
      H, 4, SLSTMParams, SLSTMCarry, opts, forget_block=2, forget_bias=forget_bias, use_bias=True)

  def step_transformed(params, carry, u):
    u = check_step(params, carry, u)
    cdt = carry.h.dtype
    pre = u.astype(cdt) + _dense.recurrent(carry.h, params.w_h, dtype, precision).astype(cdt)
    z_pre, i_pre, f_pre, o_pre = jnp.split(pre, 4, axis=-1)
    log_f = -jax.nn.softplus(-f_pre) if forget_gate == "sigmoid" else f_pre
    # Stabiliser: m_t = max(log f + m_{t-1}, i~), except from an empty state (n = 0: the initial carry), where
    # m_t = i~ as in the xLSTM reference code; then i' = 1 and n_t >= 1, so h = c / n never divides 0 by 0 when
    # exp(i~ - log f) underflows (saturating inputs). Exact: with c = n = 0 the scale m is free.
    empty = carry.n == 0
    m = jnp.where(empty, i_pre, jnp.maximum(log_f + carry.m, i_pre))
    i_gate = jnp.exp(i_pre - m)
    # An empty state has nothing to forget: f' = 0 there (exp(-inf)), not exp(log f - i~), which can overflow.
    f_gate = jnp.exp(jnp.where(empty, jnp.full_like(m, -jnp.inf), log_f + carry.m - m))
    c = f_gate * carry.c + i_gate * jnp.tanh(z_pre)
    n = f_gate * carry.n + i_gate
    h = jax.nn.sigmoid(o_pre) * c / n
    return SLSTMCarry(h=h, c=c, n=n, m=m), h

  return _parts.transformed_cell(init, initial_carry, input_transform, step_transformed, name="slstm")
