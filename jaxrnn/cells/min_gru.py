"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gates do not read ``h``, so it scans in
parallel."""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Optional, Tuple, Unpack

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import parallel_scan
from jaxrnn import path_choice
from jaxrnn.cells import _dense
from jaxrnn.cells import _parts
from jaxrnn.cells.options import DenseOptions, resolve
from jaxrnn.types import AutoRuleFn, Cell


class MinGRUParams(NamedTuple):
  """Parameters of :func:`min_gru`. Blocks are ordered ``[z, h~]``."""

  w: jax.Array  # [F, 2H] input kernel of the update gate and the candidate
  b: Optional[jax.Array]  # [2H] bias; None if use_bias=False


class MinGRUCarry(NamedTuple):
  """Carry of :func:`min_gru`."""

  h: jax.Array  # [*B, H] hidden state, also the output


def g(x: jax.Array) -> jax.Array:
  """Feng et al.'s positive activation ``g(x) = x + 1/2 (x >= 0), sigmoid(x) (x < 0)`` (continuous at 0)."""
  return jnp.where(x >= 0, jax.nn.relu(x) + 0.5, jax.nn.sigmoid(jnp.minimum(x, 0)))


def log_g(x: jax.Array) -> jax.Array:
  """``log g(x)``, finite and with finite gradients for every finite ``x``."""
  return jnp.where(x >= 0, jnp.log(jax.nn.relu(x) + 0.5), -jax.nn.softplus(-jnp.minimum(x, 0)))


def interpolation_scan(d: jax.Array, k_h: jax.Array, h0: jax.Array, mask: Optional[jax.Array], carry_type: type, *,
                       log_scan: bool, cand: Callable, kernel: str = "xla",
                       resets: Optional[_parts.Resets] = None) -> Tuple[Any, jax.Array]:
  """The parallel form of ``h_t = sigmoid(-d_t) h_{t-1} + sigmoid(d_t) cand(k_t)`` (minGRU, minLSTM).

  ``d, k_h: [T, *B, H]`` in the carry's dtype; ``log_scan`` scans the logarithms (``cand`` is then ``g``);
  otherwise ``kernel`` runs the linear recurrence (:func:`jaxrnn.parallel_scan.linear_recurrence`). ``resets``:
  the carry entering each flagged step is ``resets.carry`` (inside the scan, see
  :func:`jaxrnn.parallel_scan.linear_recurrence`). Returns ``(carry_type(h=h_T), hs)``, ``hs`` zero at masked steps.
  """
  cdt = h0.dtype
  flags, h_reset = (None, None) if resets is None else (resets.flags, resets.carry.h)
  if log_scan:
    hs, last = parallel_scan.log_linear_recurrence(-jax.nn.softplus(d), -jax.nn.softplus(-d) + log_g(k_h), h0, mask,
                                                   resets=flags, h_reset=h_reset)
  else:  # 0 < sigmoid(-d) <= 1: the multiply-add scan cannot overflow
    hs, last = parallel_scan.linear_recurrence(jax.nn.sigmoid(-d), jax.nn.sigmoid(d) * cand(k_h), h0, mask,
                                               kernel=kernel, resets=flags, h_reset=h_reset)
  return carry_type(h=last.astype(cdt)), parallel_scan.zero_masked(hs, mask).astype(cdt)


class InterpolationParts(NamedTuple):
  """What :func:`min_gru` and :func:`jaxrnn.min_lstm` share (:func:`interpolation_parts`)."""

  cand: Callable  # the candidate's map: g in log space, else the identity
  dense: _dense.DenseParts  # init, initial_carry, input_transform and the checks
  check_sequence: Callable  # check(params, carry, xs) -> the carry's dtype, for _parts.parallel_path
  kernels: Tuple[str, ...]  # the kernels of the sequence path: no Pallas kernel for the log-space scan


def interpolation_parts(factory: str, hidden_size: int, n_blocks: int, params_type: type, carry_type: type,
                        options: Mapping[str, Any], *, log_space: bool, log_scan: bool,
                        use_bias: bool) -> InterpolationParts:
  """Checks the shared hyperparameters and builds the parts of a cell whose input kernel has ``n_blocks`` blocks.

  ``options``: the factory's :class:`jaxrnn.cells.options.DenseOptions` (``factory`` names it in errors).
  """
  H = _dense.hyper(hidden_size).hidden_size
  opts = resolve(factory, options, DenseOptions)
  if log_scan and not log_space:
    raise ValueError("log_scan=True needs log_space=True (the input term must be positive)")
  parts = _dense.dense_parts(H, n_blocks, params_type, carry_type, opts, use_bias=use_bias, recurrent=False)

  def check_sequence(params, carry, xs):
    parts.check_params(params)
    xs = _checks.step_input("xs", xs, (params.w.shape[0],))
    _dense.check_carry(carry, carry_type, xs.shape[1:-1], H)
    return carry.h.dtype

  return InterpolationParts(g if log_space else (lambda k: k), parts, check_sequence,
                            ("xla",) if log_scan else ("xla", "pallas"))


def interpolation_cell(prefix: str, log_space: bool, log_scan: bool, ip: InterpolationParts,
                       step_transformed: Callable, run: Callable,
                       auto: AutoRuleFn = path_choice.LINEAR_RECURRENCE) -> Cell:
  """The :class:`jaxrnn.Cell` of :func:`min_gru` / :func:`jaxrnn.min_lstm` (``prefix``) from its shared parts, its
  ``step_transformed``, its parallel ``run(params, carry, u, mask, kernel, resets)`` and where ``mode="auto"`` takes
  that run (:attr:`jaxrnn.SequencePath.auto`)."""
  name = f"{prefix}{'_log_scan' if log_scan else ''}" if log_space else f"{prefix}_linear"
  parts = ip.dense
  step = _parts.step_of(parts.input_transform, step_transformed)
  return Cell(init=parts.init, initial_carry=parts.initial_carry, step=step, input_transform=parts.input_transform,
              step_transformed=step_transformed,
              sequence=_parts.parallel_path(parts.input_transform, ip.check_sequence, run, name, ip.kernels,
                                            auto=auto),
              carry_jacobian_diagonal=_parts.elementwise_carry_diagonal(step), name=name)


AUTO: AutoRuleFn = path_choice.crossover_rule(
    {"cpu": path_choice.Crossover(forward=None, gradient=0, gradient_max=2**20)})
"""Where ``mode="auto"`` runs :func:`min_gru`'s associative scan: on CPU, differentiated runs up to ``T * width =
2**20`` elements (forward + backward 1.1-1.7x faster than the scan of ``step`` at T = 256 .. 2048, a tie at 4096),
forward never (0.45-1.1x), measured on a quiet 2-core machine
(``benchmarks/parallel_vs_sequential.py``, three runs, B=8 F=32 H=64, so ``T * width = 512 T``; docs,
"Parallel-in-time cells"); elsewhere always."""


def min_gru(
    hidden_size: int,
    *,
    log_space: bool = True,
    log_scan: bool = False,
    use_bias: bool = True,
    **options: Unpack[DenseOptions],
) -> Cell:
  r"""minGRU: the gates and the candidate depend on ``x_t`` only, so the recurrence is linear in ``h``.

  .. math::

     z_t &= \sigma(x_t W_z + b_z), \qquad \tilde h_t = g(x_t W_h + b_h) \\
     h_t &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

  with ``g(x) = x + 1/2`` for ``x >= 0`` and ``sigmoid(x)`` below (``log_space=True``, the paper's log-space
  version: ``h~ > 0``; with ``log_scan=True`` the sequence path scans ``log(1 - z) = -softplus(k_z)`` and
  ``log z + log g(k_h)`` with ``logaddexp``, otherwise the pairs ``(1 - z, z h~)``); with ``log_space=False``,
  ``g`` is the identity.

  ``step`` runs one step (streaming); ``sequence`` evaluates all ``T`` steps with ``jax.lax.associative_scan``
  (``O(log T)`` depth). ``jaxrnn.unroll`` picks it in ``mode="auto"`` or ``mode="sequence"`` (the "parallel" mode)
  and scans ``step`` in ``mode="step"`` (the "sequential" mode); both compute the same function.

  Args:
    hidden_size: ``H``.
    log_space: the paper's log-space version (default): ``g`` keeps ``h~ > 0``, so that the recurrence can be
      scanned in log space (``log_scan``); ``False``: ``g`` is the identity (the plain version).
    log_scan: with ``log_space``, scan ``log a`` and ``log b`` in log space (``logaddexp``, Heinsen 2023), as the
      paper does. Off by default: the associative scan of ``(a, b)`` pairs multiplies numbers ``0 < a <= 1`` and
      never divides (unlike the cumulative-product form the paper's log space protects), so it cannot overflow
      (products below the smallest float become 0, their true limit), and it is several times faster on CPU
      than ``logaddexp``. Both give the same values.
    use_bias: whether the cell has the bias ``b``.
    **options: :class:`jaxrnn.cells.options.DenseOptions`: ``kernel_init`` and ``bias_init`` draw the ``[z, h~]``
      blocks of ``w: [F, 2H]`` and ``b: [2H]``; ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``MinGRUParams`` and ``MinGRUCarry(h)``, and a parallel ``sequence`` path.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.min_gru(4)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> xs = jnp.ones((2, 7, 3))                                       # [B, T, F]
    >>> carry = cell.initial_carry(params, (2,))
    >>> _, hs_par = jaxrnn.unroll(cell, params, carry, xs)                 # associative scan
    >>> _, hs_seq = jaxrnn.unroll(cell, params, carry, xs, mode="step")    # lax.scan of step
    >>> hs_par.shape, bool(jnp.allclose(hs_par, hs_seq))
    ((2, 7, 4), True)
  """
  ip = interpolation_parts("min_gru", hidden_size, 2, MinGRUParams, MinGRUCarry, options, log_space=log_space,
                           log_scan=log_scan, use_bias=use_bias)

  def step_transformed(params, carry, u):
    u = ip.dense.check_step(params, carry, u)
    k_z, k_h = jnp.split(u.astype(carry.h.dtype), 2, axis=-1)
    z = jax.nn.sigmoid(k_z)
    h = (1 - z) * carry.h + z * ip.cand(k_h)
    return MinGRUCarry(h=h), h

  def run(params, carry, u, mask, kernel, resets):
    k_z, k_h = jnp.split(u, 2, axis=-1)
    return interpolation_scan(k_z, k_h, carry.h, mask, MinGRUCarry, log_scan=log_scan, cand=ip.cand, kernel=kernel,
                              resets=resets)

  return interpolation_cell("min_gru", log_space, log_scan, ip, step_transformed, run, auto=AUTO)
