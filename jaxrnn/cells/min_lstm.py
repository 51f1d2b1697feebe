"""minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): an LSTM whose gates do not read ``h``, scanned in
parallel."""

from __future__ import annotations

from typing import NamedTuple, Optional, Unpack

import jax
import jax.numpy as jnp

from jaxrnn import path_choice
from jaxrnn.cells.min_gru import interpolation_cell, interpolation_parts, interpolation_scan
from jaxrnn.cells.options import DenseOptions
from jaxrnn.types import AutoRuleFn, Cell


class MinLSTMParams(NamedTuple):
  """Parameters of :func:`min_lstm`. Blocks are ordered ``[f, i, h~]``."""

  w: jax.Array  # [F, 3H] input kernel of the forget gate, the input gate and the candidate
  b: Optional[jax.Array]  # [3H] bias; None if use_bias=False


class MinLSTMCarry(NamedTuple):
  """Carry of :func:`min_lstm`."""

  h: jax.Array  # [*B, H] hidden state, also the output


AUTO: AutoRuleFn = path_choice.crossover_rule(
    {"cpu": path_choice.Crossover(forward=0, forward_max=2**19, gradient=0, gradient_max=2**18)})
"""Where ``mode="auto"`` runs :func:`min_lstm`'s associative scan: on CPU, forward up to ``T * width = 2**19``
elements (1.1-1.4x faster than the scan of ``step`` at T <= 1024, 0.6x at 4096) and differentiated runs up to
``2**18`` (1.3-1.6x at T <= 512, a tie at 1024 .. 4096), measured on a quiet 2-core machine
(``benchmarks/parallel_vs_sequential.py``, three runs, B=8 F=32 H=64, so ``T * width = 512 T``; docs,
"Parallel-in-time cells"); elsewhere always."""


def min_lstm(
    hidden_size: int,
    *,
    log_space: bool = True,
    log_scan: bool = False,
    use_bias: bool = True,
    **options: Unpack[DenseOptions],
) -> Cell:
  r"""minLSTM: forget and input gates of ``x_t`` only, normalised to sum to one (time-independent scale).

  .. math::

     f_t &= \sigma(x_t W_f + b_f), \quad i_t = \sigma(x_t W_i + b_i), \quad \tilde h_t = g(x_t W_h + b_h) \\
     f'_t &= \frac{f_t}{f_t + i_t}, \quad i'_t = \frac{i_t}{f_t + i_t} \\
     h_t &= f'_t \odot h_{t-1} + i'_t \odot \tilde h_t

  ``g`` is Feng et al.'s positive activation (``x + 1/2`` for ``x >= 0``, ``sigmoid(x)`` below) with
  ``log_space=True``; with ``log_scan=True`` the sequence path scans ``log f' = -softplus(d)`` and
  ``log i' + log g(k_h)`` (``d = softplus(-k_f) - softplus(-k_i)``) with ``logaddexp``, otherwise the pairs
  ``(f', i' h~)``. With ``log_space=False``, ``g`` is the identity and the
  pairs ``(f', i' h~)`` are scanned directly.

  ``sequence`` is the parallel path (``jax.lax.associative_scan``) that ``jaxrnn.unroll`` uses in
  ``mode="auto"``/``"sequence"``; ``mode="step"`` scans ``step`` sequentially.

  Args:
    hidden_size: ``H``.
    log_space: the paper's log-space version (default): ``g`` keeps ``h~ > 0``, so that the recurrence can be
      scanned in log space (``log_scan``); ``False``: ``g`` is the identity (the plain version).
    log_scan: with ``log_space``, scan ``log f'`` and ``log(i' h~)`` in log space (``logaddexp``, Heinsen 2023),
      as the paper does. Off by default: the associative scan of ``(f', i' h~)`` pairs multiplies numbers
      ``0 < f' <= 1`` and never divides, so it cannot overflow, and it is several times faster on CPU.
    use_bias: whether the cell has the bias ``b``.
    **options: :class:`jaxrnn.cells.options.DenseOptions`: ``kernel_init`` and ``bias_init`` draw the ``[f, i, h~]``
      blocks of ``w: [F, 3H]`` and ``b: [3H]``; ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``MinLSTMParams`` and ``MinLSTMCarry(h)``, and a parallel ``sequence`` path.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.min_lstm(4)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> carry, hs = jaxrnn.unroll(cell, params, cell.initial_carry(params), jnp.ones((5, 3)))
    >>> hs.shape, bool(jnp.allclose(carry.h, hs[-1]))
    ((5, 4), True)
  """
  ip = interpolation_parts("min_lstm", hidden_size, 3, MinLSTMParams, MinLSTMCarry, options, log_space=log_space,
                           log_scan=log_scan, use_bias=use_bias)

  def step_transformed(params, carry, u):
    u = ip.dense.check_step(params, carry, u)
    k_f, k_i, k_h = jnp.split(u.astype(carry.h.dtype), 3, axis=-1)
    d = jax.nn.softplus(-k_f) - jax.nn.softplus(-k_i)  # log(i / f)
    h = jax.nn.sigmoid(-d) * carry.h + jax.nn.sigmoid(d) * ip.cand(k_h)
    return MinLSTMCarry(h=h), h

  def run(params, carry, u, mask, kernel, resets):
    k_f, k_i, k_h = jnp.split(u, 3, axis=-1)
    d = jax.nn.softplus(-k_f) - jax.nn.softplus(-k_i)  # log(i / f)
    return interpolation_scan(d, k_h, carry.h, mask, MinLSTMCarry, log_scan=log_scan, cand=ip.cand, kernel=kernel,
                              resets=resets)

  return interpolation_cell("min_lstm", log_space, log_scan, ip, step_transformed, run, auto=AUTO)
