"""The Real-Gated Linear Recurrent Unit of Griffin (De et al. 2024), with resets at segment boundaries."""

from __future__ import annotations

from typing import NamedTuple, Unpack

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import parallel_scan
from jaxrnn import path_choice
from jaxrnn.cells import _dense
from jaxrnn.cells import _parts
from jaxrnn.cells.options import DenseOptions, resolve
from jaxrnn.types import AutoRuleFn, Cell


@jax.custom_jvp
def _sqrt_bound_derivative(x: jax.Array) -> jax.Array:
  """``sqrt(x)`` whose derivative is capped at 1000 (at ``x < 1e-6``), as in Griffin's reference code.

  With a saturated recurrence gate, ``a = 1`` exactly and ``d sqrt(1 - a^2)`` is infinite: ``inf * 0 = NaN`` in
  the gradient. Values are exact; only the derivative near 0 is bounded.
  """
  return jnp.sqrt(x)


@_sqrt_bound_derivative.defjvp
def _sqrt_bound_derivative_jvp(primals, tangents):
  (x,), (t,) = primals, tangents
  return jnp.sqrt(x), 0.5 * t / jnp.sqrt(jnp.maximum(x, jnp.asarray(1e-6, x.dtype)))


class RGLRUParams(NamedTuple):
  """Parameters of :func:`rg_lru`. Blocks of ``w`` are ordered ``[r, i, v]``."""

  w: jax.Array  # [F, 3H] kernels of the recurrence gate, the input gate and the value
  b: jax.Array  # [3H] biases
  lam: jax.Array  # [H] Lambda: a = sigmoid(Lambda), a^c uniform in [a_min, a_max] at init


class RGLRUCarry(NamedTuple):
  """Carry of :func:`rg_lru`."""

  h: jax.Array  # [*B, H] hidden state, also the output


AUTO: AutoRuleFn = path_choice.crossover_rule(
    {"cpu": path_choice.Crossover(forward=0, forward_max=2**20, gradient=0, gradient_max=2**20)})
"""Where ``mode="auto"`` runs :func:`rg_lru`'s associative scan: on CPU, forward and differentiated runs up to
``T * width = 2**20`` elements (forward 1.0-1.4x and forward + backward 1.1-1.7x faster than the scan of ``step``
at T <= 2048; 0.6x and a tie at 4096), measured on a quiet 2-core machine
(``benchmarks/parallel_vs_sequential.py``, three runs, B=8 F=32 H=64, so ``T * width = 512 T``; docs,
"Parallel-in-time cells"); elsewhere always."""


def rg_lru(
    hidden_size: int,
    *,
    c: float = 8.0,
    resets: bool = False,
    a_min: float = 0.9,
    a_max: float = 0.999,
    **options: Unpack[DenseOptions],
) -> Cell:
  r"""RG-LRU: a real diagonal recurrence whose decay is gated by the input.

  .. math::

     r_t &= \sigma(x_t W_r + b_r), \quad i_t = \sigma(x_t W_i + b_i), \quad v_t = x_t W_v + b_v \\
     \log a_t &= -c \, r_t \odot \mathrm{softplus}(-\Lambda) \quad (a_t = \sigma(\Lambda)^{c r_t}) \\
     h_t &= a_t \odot h_{t-1} + \sqrt{1 - a_t^2} \odot (i_t \odot v_t)

  In Griffin the RG-LRU reads the output of a linear layer and a convolution; here the value ``v_t`` is the
  cell's own linear map, so ``H`` may differ from ``F``. ``Lambda`` is initialised so that ``a^c`` is uniform in
  ``[a_min, a_max]``.

  Resets (``resets=True``): the input is the pair ``(x [*B, F], should_reset [*B])`` (bool, or a number: nonzero
  means True; ``input_ndim`` is ``(1, 0)``), as :func:`jaxrnn.reset_on` reads it; a set flag marks the first step
  of a new segment (document). There the state restarts from zero and the input is not normalised:
  ``h_t = i_t v_t`` (as in Griffin's implementation). ``init(key, F)`` takes the width of ``x``; the flags ride
  along through ``input_transform`` (``(u, should_reset)``) to ``step_transformed``.

  ``sequence`` is the parallel path (``jax.lax.associative_scan`` over ``(a_t, b_t)``, with ``a_t = 0`` at
  resets) that ``jaxrnn.unroll`` uses in ``mode="auto"``/``"sequence"``; ``mode="step"`` scans ``step``.

  Args:
    hidden_size: ``H``.
    c: the constant ``c`` of the decay exponent (8 in Griffin).
    resets: read the input as the pair ``(x, should_reset)`` and restart the state where the flag is set.
    a_min, a_max: the range of ``a^c`` at initialisation (``0 < a_min < a_max < 1``).
    **options: :class:`jaxrnn.cells.options.DenseOptions`: ``kernel_init`` and ``bias_init`` draw the ``[r, i, v]``
      blocks of ``w: [F, 3H]`` and ``b: [3H]`` (``Lambda`` is drawn as above); ``dtype``, ``param_dtype``,
      ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``RGLRUParams`` and ``RGLRUCarry(h)``, and a parallel ``sequence`` path.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.rg_lru(4, resets=True)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> xs = (jnp.ones((6, 3)), jnp.array([1, 0, 0, 1, 0, 0], bool))  # (inputs [T, F], flags [T]): 2 segments
    >>> _, hs = jaxrnn.unroll(cell, params, None, xs)
    >>> bool(jnp.allclose(hs[:3], hs[3:]))                           # the second segment starts afresh
    True
  """
  hidden_size = _checks.positive_int("hidden_size", hidden_size)
  if not 0.0 < a_min < a_max < 1.0:
    raise ValueError(f"a_min and a_max must satisfy 0 < a_min < a_max < 1, got a_min={a_min}, a_max={a_max}")
  if not c > 0:
    raise ValueError(f"c must be positive, got {c}")
  opts = resolve("rg_lru", options, DenseOptions)
  dtype, param_dtype, precision = opts.dtype, opts.param_dtype, opts.precision
  H = hidden_size
  name = "rg_lru_resets" if resets else "rg_lru"

  def init(key, input_size):
    input_size = _dense.check_init_args(key, input_size)
    k_w, k_b, k_l = jax.random.split(key, 3)
    w = _dense.init_blocks(k_w, opts.kernel_init, input_size, H, 3, param_dtype)
    b = opts.bias_init(k_b, (3 * H,), param_dtype)
    ac = jax.random.uniform(k_l, (H,), jnp.float32, a_min, a_max)
    a = ac ** (1.0 / c)
    lam = jnp.log(a) - jnp.log1p(-a)  # logit
    return RGLRUParams(w=w, b=b, lam=lam.astype(param_dtype))

  initial_carry = _parts.zeros_carry(RGLRUCarry, lambda params: params.w.dtype, h=(H,))

  def split(what, inputs, width):
    """``x [*B, width]`` and, with resets, ``should_reset [*B]`` (bool), checked; ``None`` without resets."""
    flag = None
    if resets:
      inputs, flag = _checks.reset_pair(what, inputs, name)
    x = _checks.step_input(what, inputs, (width,))
    if flag is not None and flag.shape != x.shape[:-1]:
      raise ValueError(f"should_reset of {name} must have the shape of {what} without its feature axis "
                       f"{x.shape[:-1]}, got shape {flag.shape}")
    return x, flag

  def input_transform(params, inputs):
    xs, flag = split("x", inputs, params.w.shape[0])
    u = _dense.project(xs, params.w, params.b, dtype, precision)
    return (u, flag) if resets else u  # the flags ride along

  def coefficients(params, u, flag):
    """``(a, b)`` of ``h_t = a h_{t-1} + b`` from the transformed input ``u: [..., 3H]`` and flags ``[...]``."""
    k_r, k_i, v = jnp.split(u, 3, axis=-1)
    neg_log_sigma = jax.nn.softplus(-params.lam.astype(u.dtype))  # -log a, a = sigmoid(Lambda)
    log_a = -c * jax.nn.sigmoid(k_r) * neg_log_sigma.reshape((1,) * (u.ndim - 1) + (H,))
    a = jnp.exp(log_a)
    mult = _sqrt_bound_derivative(-jnp.expm1(2 * log_a))  # sqrt(1 - a^2), accurate for a close to 1
    gated = jax.nn.sigmoid(k_i) * v
    if flag is not None:
      reset = flag[..., None]
      a = jnp.where(reset, jnp.zeros_like(a), a)
      mult = jnp.where(reset, jnp.ones_like(mult), mult)
    return a, mult * gated

  def step_transformed(params, carry, u):
    u, flag = split("input_transform(x)", u, 3 * H)
    _dense.check_carry(carry, RGLRUCarry, u.shape[:-1], H)
    a, b = coefficients(params, u.astype(carry.h.dtype), flag)
    h = a * carry.h + b
    return RGLRUCarry(h=h), h

  step = _parts.step_of(input_transform, step_transformed)

  def check(params, carry, xs):
    xs, _ = split("xs", xs, params.w.shape[0])
    _dense.check_carry(carry, RGLRUCarry, xs.shape[1:-1], H)
    return carry.h.dtype

  def run(params, carry, u, mask, kernel, carry_resets):
    cdt = carry.h.dtype
    a, b = coefficients(params, *(u if resets else (u, None)))  # a = 0 at the cell's own resets
    flags, h_reset = (None, None) if carry_resets is None else (carry_resets.flags, carry_resets.carry.h)
    hs, last = parallel_scan.linear_recurrence(a, b, carry.h, mask, kernel=kernel, resets=flags, h_reset=h_reset)
    return RGLRUCarry(h=last.astype(cdt)), parallel_scan.zero_masked(hs, mask).astype(cdt)

  return Cell(init=init, initial_carry=initial_carry, step=step, input_transform=input_transform,
              step_transformed=step_transformed, sequence=_parts.parallel_path(input_transform, check, run, name,
                                                                           ("xla", "pallas"), auto=AUTO),
              input_ndim=(1, 0) if resets else 1, name=name,
              carry_jacobian_diagonal=_parts.elementwise_carry_diagonal(step))
