"""The Clockwork RNN (Koutnik, Greff, Gomez & Schmidhuber 2014): modules of the hidden state tick at own periods."""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Sequence, Tuple, Union, Unpack

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import _checks
from jaxrnn.cells import _dense
from jaxrnn.cells import _parts
from jaxrnn.cells.options import RecurrentOptions, resolve
from jaxrnn.types import Cell


class ClockworkParams(NamedTuple):
  """Parameters of :func:`clockwork_rnn`."""

  w_i: jax.Array  # [F, H] input kernel
  w_h: jax.Array  # [H, H] recurrent kernel; only the blocks (source j, target i) with j >= i are used
  b: Optional[jax.Array]  # [H] bias; None if use_bias=False


class ClockworkCarry(NamedTuple):
  """Carry of :func:`clockwork_rnn`."""

  h: jax.Array  # [*B, H] hidden state (g modules of H // g units each), also the output
  t: jax.Array  # [*B] int32 step counter: how many steps this sequence has taken (0 at the start)


def clockwork_periods(periods: Optional[Sequence[int]] = None, num_modules: Optional[int] = None) -> Tuple[int, ...]:
  """Checks and resolves :func:`clockwork_rnn`'s periods (default ``1, 2, 4, ..., 2**(num_modules - 1)``).

  >>> clockwork_periods(num_modules=4)
  (1, 2, 4, 8)
  """
  if periods is None:
    if num_modules is None:
      raise ValueError("give periods (e.g. (1, 2, 4, 8)) or num_modules (periods 1, 2, 4, ...)")
    num_modules = _checks.positive_int("num_modules", num_modules)
    return tuple(2 ** i for i in range(num_modules))
  if not isinstance(periods, (tuple, list)) or not periods:
    raise TypeError(f"periods must be a non-empty tuple of positive ints, got {periods!r}")
  periods = tuple(_checks.positive_int(f"periods[{i}]", p) for i, p in enumerate(periods))
  if any(a >= b for a, b in zip(periods, periods[1:])):
    raise ValueError(f"periods must be strictly increasing (fastest module first), got {periods}")
  if num_modules is not None and _checks.positive_int("num_modules", num_modules) != len(periods):
    raise ValueError(f"num_modules={num_modules} does not match len(periods)={len(periods)} for periods={periods}")
  return periods


def clockwork_rnn(
    hidden_size: int,
    *,
    periods: Optional[Sequence[int]] = None,
    num_modules: Optional[int] = None,
    activation: Union[str, Callable] = "tanh",
    use_bias: bool = True,
    **options: Unpack[RecurrentOptions],
) -> Cell:
  r"""The Clockwork RNN of Koutnik et al. 2014, "A Clockwork RNN" (ICML, arXiv:1402.3511).

  The hidden state is split into ``g`` modules of ``k = H // g`` units with periods ``T_1 < ... < T_g``
  (default ``1, 2, 4, ..., 2**(g-1)``). With ``t`` the number of steps taken so far (0 at the first step), module
  ``i`` is updated only when ``t mod T_i == 0`` and copies its previous value otherwise:

  .. math::

     \tilde h_t &= \phi(x_t W_i + h_{t-1} (W_h \odot M) + b) \\
     h_t^{(i)} &= \tilde h_t^{(i)} \ \text{if}\ t \bmod T_i = 0 \ \text{else}\ h_{t-1}^{(i)}

  The recurrence is block-triangular: module ``i`` reads module ``j`` iff ``T_j >= T_i`` (``j >= i``), i.e. the
  *slower modules feed the faster ones* and never the reverse. The paper writes this (column vectors,
  ``W_H y``) as a block-upper-triangular ``W_H``; in our row-vector layout (``h @ W_h``, ``W_h: [H_src, H_dst]``)
  the mask ``M`` keeps the blocks with source index ``>=`` target index. All modules update at the first step
  (``t = 0``).

  The step counter lives in the carry (``ClockworkCarry.t``, int32 ``[*B]``) next to ``h``; ``jaxrnn.unroll``
  freezes it at padded steps, and with ``reverse=True`` it counts from each sequence's last valid input. All
  modules are computed at every step and the inactive ones are discarded (the paper's saving in arithmetic is not
  realised: the cost is that of an Elman RNN of size ``H``). The output is the whole ``h_t``.

  Args:
    hidden_size: ``H``, divisible by the number of modules.
    periods: the modules' periods, positive and strictly increasing (fastest module first).
    num_modules: ``g``; with ``periods=None`` the periods are ``1, 2, 4, ..., 2**(g-1)``.
    activation: ``"tanh"`` (default) or any name in ``"relu"``, ... or a callable.
    use_bias: whether the cell has the bias ``b``.
    **options: :class:`jaxrnn.cells.options.RecurrentOptions`: ``kernel_init``, ``recurrent_kernel_init`` and
      ``bias_init`` draw ``W_i: [F, H]``, ``W_h: [H, H]`` (then masked to the blocks used) and ``b: [H]``; ``dtype``,
      ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``ClockworkParams`` and ``ClockworkCarry(h, t)``.

  Raises:
    ValueError / TypeError: neither ``periods`` nor ``num_modules``, bad or unsorted periods, ``hidden_size`` not
      divisible by the number of modules.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.clockwork_rnn(4, periods=(1, 2))
    >>> params = cell.init(jax.random.key(0), 3)
    >>> carry = cell.initial_carry(params, (2,))
    >>> carry.t.dtype, carry.t.shape
    (dtype('int32'), (2,))
    >>> carry, hs = jaxrnn.unroll(cell, params, carry, jnp.ones((2, 3, 3)))
    >>> carry.t.tolist(), bool((hs[:, 1, 2:] == hs[:, 0, 2:]).all())  # slow module held at t = 1
    ([3, 3], True)
  """
  hidden_size = _checks.positive_int("hidden_size", hidden_size)
  periods = clockwork_periods(periods, num_modules)
  g = len(periods)
  if hidden_size % g:
    raise ValueError(f"hidden_size must be divisible by the number of modules {g} (periods {periods}), got "
                     f"{hidden_size}")
  H, act, _ = _dense.hyper(hidden_size, activation)
  opts = resolve("clockwork_rnn", options)
  dtype, precision = opts.dtype, opts.precision
  k = H // g
  module = np.repeat(np.arange(g), k)  # [H] module index of each unit
  mask_np = module[:, None] >= module[None, :]  # [H_src, H_dst]: source module j feeds target i iff j >= i
  dense_init, _, input_transform, check_params, _ = _dense.dense_parts(
      H, 1, ClockworkParams, ClockworkCarry, opts, use_bias=use_bias)

  def init(key, input_size):
    params = dense_init(key, input_size)
    return params._replace(w_h=jnp.where(jnp.asarray(mask_np), params.w_h, jnp.zeros_like(params.w_h)))

  initial_carry = _parts.initial_carry(
      lambda params, batch_shape, dt: ClockworkCarry(h=jnp.zeros(batch_shape + (H,), dt),
                                                     t=jnp.zeros(batch_shape, jnp.int32)),
      lambda params: params.w_h.dtype)

  def step_transformed(params, carry, u):
    check_params(params)
    u = _dense.check_transformed("input_transform(x)", u, H)
    _checks.carry_type("carry", carry, ClockworkCarry)
    batch_shape = u.shape[:-1]
    _checks.carry_leaf("carry.h", carry.h, batch_shape, (H,))
    t = carry.t
    if tuple(getattr(t, "shape", ())) != batch_shape:
      raise ValueError(f"carry.t must have shape {batch_shape} (the batch shape of x), got shape "
                       f"{tuple(getattr(t, 'shape', ()))}")
    if not jnp.issubdtype(t.dtype, jnp.integer):
      raise TypeError(f"carry.t must be an integer array (the step counter), got dtype {t.dtype}")
    w_h = jnp.where(jnp.asarray(mask_np), params.w_h, jnp.zeros_like(params.w_h))
    z = (u + _dense.recurrent(carry.h, w_h, dtype, precision)).astype(carry.h.dtype)
    per = jnp.asarray(periods, t.dtype).reshape((1,) * t.ndim + (g,))
    active = jnp.repeat(t[..., None] % per == 0, k, axis=-1)  # [*B, H]
    h = jnp.where(active, act(z), carry.h)
    return ClockworkCarry(h=h, t=t + jnp.ones((), t.dtype)), h

  return _parts.transformed_cell(init, initial_carry, input_transform, step_transformed, name="clockwork_rnn")
