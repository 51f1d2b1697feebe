"""The Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long Sequences")."""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Unpack

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import parallel_scan
from jaxrnn import path_choice
from jaxrnn.cells import _dense
from jaxrnn.cells import _parts
from jaxrnn.cells.options import DtypeOptions, resolve
from jaxrnn.types import AutoRuleFn, Cell


class LRUParams(NamedTuple):
  """Parameters of :func:`lru`: ``lambda = exp(-exp(nu_log) + i exp(theta_log))``, ``B = b_re + i b_im``, ..."""

  nu_log: jax.Array  # [N] log of minus the log modulus of lambda
  theta_log: jax.Array  # [N] log of the phase of lambda
  gamma_log: jax.Array  # [N] log of the input normalisation gamma = sqrt(1 - |lambda|^2)
  b_re: jax.Array  # [F, N] input matrix, real part
  b_im: jax.Array  # [F, N] input matrix, imaginary part
  c_re: jax.Array  # [N, H] output matrix, real part
  c_im: jax.Array  # [N, H] output matrix, imaginary part
  d: jax.Array  # [F, H] feed-through (the paper's diagonal D when F == H)


class LRUCarry(NamedTuple):
  """Carry of :func:`lru`: the complex state ``x = x_re + i x_im`` as two real leaves."""

  x_re: jax.Array  # [*B, N] real part of the state
  x_im: jax.Array  # [*B, N] imaginary part of the state


def _complex_dtype(dtype):
  return jnp.result_type(dtype, jnp.complex64)


AUTO: AutoRuleFn = path_choice.crossover_rule(
    {"cpu": path_choice.Crossover(forward=None, gradient=0, gradient_max=2**18)})
"""Where ``mode="auto"`` runs :func:`lru`'s associative scan (complex arithmetic): on CPU, differentiated runs up to
``T * width = 2**18`` elements (1.2-1.3x faster than the scan of ``step`` at T <= 512, 0.63-0.75x from 1024),
forward never (0.4-0.9x), measured on a quiet 2-core machine
(``benchmarks/parallel_vs_sequential.py``, three runs, B=8 F=32 H=64, so ``T * width = 512 T``; docs,
"Parallel-in-time cells"); elsewhere always."""


def lru(
    hidden_size: int,
    *,
    state_size: Optional[int] = None,
    r_min: float = 0.0,
    r_max: float = 1.0,
    max_phase: float = 2 * math.pi,
    **options: Unpack[DtypeOptions],
) -> Cell:
  r"""The LRU: a complex diagonal linear recurrence with a real read-out.

  .. math::

     \lambda &= \exp(-\exp(\nu^{\log}) + i \exp(\theta^{\log})), \qquad
     \gamma = \exp(\gamma^{\log}) \ (= \sqrt{1 - |\lambda|^2} \text{ at init}) \\
     x_t &= \lambda \odot x_{t-1} + \gamma \odot (u_t B) \\
     h_t &= \mathrm{Re}(x_t C) + u_t D

  ``u_t`` is the input ``[F]``, ``x_t`` the complex state ``[N]`` (kept as two real carry leaves, so carries and
  outputs are real arrays of the carry dtype) and ``h_t`` the output ``[H]``. Ring initialisation: ``|lambda|``
  is drawn so that ``lambda`` is uniform on the ring ``r_min <= |lambda| <= r_max``, its phase uniform in
  ``[0, max_phase]``; ``B`` and ``C`` are complex Glorot-like normals (``1/sqrt(2F)``, ``1/sqrt(N)``).

  ``step`` runs in real arithmetic of the carry dtype; ``sequence`` (the parallel path, ``jax.lax.associative_scan``
  over complex pairs ``(lambda, gamma u B)`` in complex64/complex128) is what ``jaxrnn.unroll`` uses in
  ``mode="auto"``/``"sequence"``.

  Args:
    hidden_size: ``H``, the output size.
    state_size: ``N``, the complex state size (default ``H``).
    r_min, r_max: the ring of ``|lambda|`` at initialisation (``0 <= r_min < r_max <= 1``).
    max_phase: the largest phase of ``lambda`` at initialisation.
    **options: :class:`jaxrnn.cells.options.DtypeOptions`: ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``LRUParams`` and ``LRUCarry(x_re, x_im)``, and a parallel ``sequence`` path.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.lru(4, state_size=6, r_min=0.9, r_max=0.999)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> carry, hs = jaxrnn.unroll(cell, params, cell.initial_carry(params), jnp.ones((5, 3)))
    >>> hs.shape, hs.dtype, carry.x_re.shape
    ((5, 4), dtype('float32'), (6,))
  """
  hidden_size = _checks.positive_int("hidden_size", hidden_size)
  state_size = hidden_size if state_size is None else _checks.positive_int("state_size", state_size)
  if not 0.0 <= r_min < r_max <= 1.0:
    raise ValueError(f"r_min and r_max must satisfy 0 <= r_min < r_max <= 1, got r_min={r_min}, r_max={r_max}")
  opts = resolve("lru", options, DtypeOptions)
  dtype, param_dtype, precision = opts.dtype, opts.param_dtype, opts.precision
  H, N = hidden_size, state_size

  def init(key, input_size):
    F = _dense.check_init_args(key, input_size)
    k_u1, k_u2, k_b, k_c, k_d = jax.random.split(key, 5)
    f32 = jnp.float32
    u1 = jax.random.uniform(k_u1, (N,), f32)
    u2 = jax.random.uniform(k_u2, (N,), f32)
    nu_log = jnp.log(-0.5 * jnp.log(u1 * (r_max ** 2 - r_min ** 2) + r_min ** 2))
    theta_log = jnp.log(max_phase * u2)
    gamma_log = 0.5 * jnp.log(-jnp.expm1(-2 * jnp.exp(nu_log)))  # log sqrt(1 - |lambda|^2)
    b = jax.random.normal(k_b, (2, F, N), f32) / math.sqrt(2 * F)
    c = jax.random.normal(k_c, (2, N, H), f32) / math.sqrt(N)
    d = jax.random.normal(k_d, (F, H), f32)
    cast = lambda a: a.astype(param_dtype)
    return LRUParams(nu_log=cast(nu_log), theta_log=cast(theta_log), gamma_log=cast(gamma_log),
                     b_re=cast(b[0]), b_im=cast(b[1]), c_re=cast(c[0]), c_im=cast(c[1]), d=cast(d))

  initial_carry = _parts.zeros_carry(LRUCarry, lambda params: params.nu_log.dtype, x_re=(N,), x_im=(N,))

  def input_transform(params, xs):
    xs = _checks.step_input("x", xs, (params.b_re.shape[0],))
    w = jnp.concatenate([params.b_re, params.b_im, params.d], axis=1)  # [F, 2N + H]
    return _dense.project(xs, w, None, dtype, precision)

  def check_carry(carry, batch_shape):
    _dense.check_carry(carry, LRUCarry, batch_shape, N)

  def lam(params, cdt):
    modulus = jnp.exp(-jnp.exp(params.nu_log.astype(cdt)))
    phase = jnp.exp(params.theta_log.astype(cdt))
    return modulus * jnp.cos(phase), modulus * jnp.sin(phase), jnp.exp(params.gamma_log.astype(cdt))

  def read_out(params, x_re, x_im, u_d, cdt):
    y = (_dense.recurrent(x_re, params.c_re, dtype, precision) - _dense.recurrent(x_im, params.c_im, dtype, precision))
    return (y.astype(cdt) + u_d).astype(cdt)

  def step_transformed(params, carry, u):
    u = _dense.check_transformed("input_transform(x)", u, 2 * N + H)
    check_carry(carry, u.shape[:-1])
    cdt = carry.x_re.dtype
    bu_re, bu_im, u_d = jnp.split(u.astype(cdt), [N, 2 * N], axis=-1)
    l_re, l_im, gamma = lam(params, cdt)
    r1 = lambda a: a.reshape((1,) * (u.ndim - 1) + a.shape)
    x_re = r1(l_re) * carry.x_re - r1(l_im) * carry.x_im + r1(gamma) * bu_re
    x_im = r1(l_re) * carry.x_im + r1(l_im) * carry.x_re + r1(gamma) * bu_im
    return LRUCarry(x_re=x_re, x_im=x_im), read_out(params, x_re, x_im, u_d, cdt)

  step = _parts.step_of(input_transform, step_transformed)

  def check(params, carry, xs):
    xs = _checks.step_input("xs", xs, (params.b_re.shape[0],))
    check_carry(carry, xs.shape[1:-1])
    return carry.x_re.dtype

  def run(params, carry, u, mask, kernel, resets):
    cdt = carry.x_re.dtype
    zdt = _complex_dtype(cdt)
    rdt = jnp.finfo(zdt).dtype  # the real dtype of the complex arithmetic
    bu_re, bu_im, u_d = jnp.split(u, [N, 2 * N], axis=-1)
    l_re, l_im, gamma = lam(params, rdt)
    r1 = lambda a: a.reshape((1,) * (u.ndim - 1) + a.shape)
    bu = jax.lax.complex(bu_re.astype(rdt), bu_im.astype(rdt)) * r1(gamma).astype(zdt)
    a = jnp.broadcast_to(r1(jax.lax.complex(l_re, l_im)), bu.shape)
    as_complex = lambda c: jax.lax.complex(c.x_re.astype(rdt), c.x_im.astype(rdt))
    flags, x_reset = (None, None) if resets is None else (resets.flags, as_complex(resets.carry))
    xs_state, last = parallel_scan.linear_recurrence(a, bu, as_complex(carry), mask, kernel=kernel, resets=flags,
                                                     h_reset=x_reset)
    hs = read_out(params, jnp.real(xs_state).astype(cdt), jnp.imag(xs_state).astype(cdt), u_d, cdt)
    final = LRUCarry(x_re=jnp.real(last).astype(cdt), x_im=jnp.imag(last).astype(cdt))
    return final, parallel_scan.zero_masked(hs, mask)

  return Cell(init=init, initial_carry=initial_carry, step=step, input_transform=input_transform,
              step_transformed=step_transformed, sequence=_parts.parallel_path(input_transform, check, run, "lru",
                                                                           ("xla", "pallas"), auto=AUTO), name="lru")
