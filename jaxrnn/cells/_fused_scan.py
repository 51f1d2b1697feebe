"""Whole-sequence paths of the LSTM and GRU: a ``jax.custom_jvp`` whose tangent recurrence is linear and lean.

Why (issue 5, XLA:CPU, one thread, B=32 T=128 F=128 H=256): differentiating the scan of ``step`` gives a backward
loop that, at every step, besides the truly sequential ``dz_t W_h^T``, accumulates the kernel gradients
(``dW_h += h_{t-1}^T dz_t``, ``dW_i += x_t^T dz_t``: two transposed-operand products plus a read-modify-write of
the ``[H + F, 4H]`` accumulators) and computes ``dx_t = dz_t W_i^T``. Timed alone
(``benchmarks/backward_budget.py``) these in-loop pieces cost ~90-105 ms; the same FLOPs as one ``dz W_h^T`` loop
plus three large products after it cost ~75 ms.

Here the forward pass is the same scan (same operations, same values) that also keeps, per step, the linear
coefficients of the gate math. The JVP rule is then

* outside any loop, time-parallel: ``a_t = d(x_t W_i + b) + h_{t-1} dW_h`` for all ``t`` at once;
* one linear scan: ``dz_t = a_t + dh_{t-1} W_h``, ``dc_t = K_t * dz_t (summed over the i, f, g blocks)
  + f_t * dc_{t-1}``, ``dh_t = (K_t * dz_t)_o + q_t * dc_t`` (frozen where the mask is False).

Forward-mode AD uses this rule directly. Reverse mode transposes it (JAX does), which gives exactly the cuDNN
structure: a backward loop with only elementwise work and ``dz_t W_h^T`` (on a kernel transposed once, outside),
and the weight and input gradients as large products over all ``T * B`` rows after it.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from jaxrnn import sequences
from jaxrnn.cells import _dense
from jaxrnn.types import FUSED_SCAN, RunOptions, SequencePath


def _linear_coefficients(act: Callable, z: jax.Array):
  """``(act(z), act'(z))`` for an elementwise ``act`` (by forward-mode AD, so any callable works)."""
  return jax.jvp(act, (z,), (jnp.ones_like(z),))


def _is_zero(t: Any) -> bool:
  return isinstance(t, SymbolicZero)


def _rows(a: jax.Array) -> jax.Array:
  """``[T, *B, n] -> [T * B, n]``.

  The time-parallel tangent products run on 2-D rows: transposed (reverse mode), ``[T * B, n]^T @ [T * B, N]`` is
  one plain GEMM on XLA:CPU, where a contraction over the two axes ``(T, B)`` made XLA copy the cotangent into a
  transposed layout first (2x slower).
  """
  return a.reshape((-1, a.shape[-1]))


def _reshape_rows(a: Optional[jax.Array], lead: Tuple[int, ...]) -> Optional[jax.Array]:
  return None if a is None else a.reshape(tuple(lead) + a.shape[-1:])


def _sum(terms):
  terms = [t for t in terms if t is not None]
  if not terms:
    return None
  total = terms[0]
  for t in terms[1:]:
    total = total + t.astype(total.dtype)
  return total


def _input_tangent(input_transform: Callable, params: Any, xs: jax.Array, d_params: Any, d_xs: Any,
                   recurrent_fields: Tuple[str, ...]) -> Optional[jax.Array]:
  """The tangent of ``input_transform(params, xs)`` on rows ``[T * B, N]`` (``None`` if every tangent is zero).

  Only the live (non-symbolic-zero) tangents of ``params`` (less ``recurrent_fields``) and ``xs`` enter.
  """
  keep = {f: getattr(params, f) for f in recurrent_fields}
  none = {f: None for f in recurrent_fields}
  primals = (params._replace(**none), _rows(xs))
  tangents = (d_params._replace(**none), d_xs if _is_zero(d_xs) else _rows(d_xs))
  leaves, treedef = jax.tree.flatten(primals)
  t_leaves = jax.tree.leaves(tangents, is_leaf=_is_zero)
  live = [not _is_zero(t) for t in t_leaves]
  if not any(live):
    return None

  def transform(*live_leaves):
    it = iter(live_leaves)
    p, x = jax.tree.unflatten(treedef, [next(it) if l else a for a, l in zip(leaves, live)])
    return input_transform(p._replace(**keep), x)

  return jax.jvp(transform, [a for a, l in zip(leaves, live) if l], [t for t, l in zip(t_leaves, live) if l])[1]


def _zeros_for_symbolic(tangent: Any, primal: Any) -> Any:
  return jax.tree.map(lambda t, p: jnp.zeros_like(p) if _is_zero(t) else t, tangent, primal, is_leaf=_is_zero)


def _dot_t(a: jax.Array, w_t: jax.Array, precision: Any) -> jax.Array:
  """``a @ w_t.T`` for ``a: [*B, K]``, ``w_t: [N, K]``; transposed (reverse mode) it is ``ct @ w_t``: plain GEMM."""
  return jax.lax.dot_general(a, w_t, (((a.ndim - 1,), (1,)), ((), ())), precision=precision)


def _scan_steps(input_transform: Callable, params: Any, carry: Any, xs: jax.Array, mask: Optional[jax.Array],
                body: Callable, options: RunOptions):
  """``lax.scan`` of ``body(carry, u_t, mask_t)`` with ``u_t = input_transform(params, x_t)``, hoisted out of the
  loop or not as ``options.hoist`` says (``None``: the backend's default), ``options.unroll`` steps an iteration."""
  hoist = sequences.default_hoist() if options.hoist is None else options.hoist
  us = input_transform(params, xs) if hoist else xs

  def step(c, inp):
    u, m = inp
    return body(c, u if hoist else input_transform(params, u), m)

  return jax.lax.scan(step, carry, (us, mask), unroll=options.unroll)


def _with_jvp(forward: Callable, jvp_rule: Callable) -> Callable:
  """``forward(..., keep=False)`` as a ``jax.custom_jvp`` function of ``(params, carry, xs, mask, options)``
  (``options``, a :class:`jaxrnn.RunOptions`, is static)."""

  @functools.partial(jax.custom_jvp, nondiff_argnums=(4,))
  def sequence(params, carry, xs, mask, options):
    return forward(params, carry, xs, mask, options, keep=False)

  sequence.defjvp(jvp_rule, symbolic_zeros=True)
  return sequence


def checked(fused: Callable, check_params: Callable, carry_type: type, hidden_size: int) -> SequencePath:
  """A cell's :class:`jaxrnn.SequencePath`: checks params and carry, then runs ``fused``. It is a fused form of
  the scan of ``step``: it honours ``hoist`` and ``unroll`` (:data:`jaxrnn.types.FUSED_SCAN`); for ``remat``,
  :func:`jaxrnn.unroll` scans ``step``."""

  def sequence(params, carry, xs, mask, options):
    check_params(params)
    _dense.check_carry(carry, carry_type, xs.shape[1:-1], hidden_size)
    return fused(params, carry, xs, mask, options)

  return SequencePath(sequence, FUSED_SCAN)


def lstm_sequence(input_transform: Callable, act: Callable, gate_act: Callable, hidden_size: int,
                  dtype: Optional[Any], precision: Any) -> Callable:
  """A :class:`jaxrnn.types.SequenceFn` for :func:`jaxrnn.lstm` (params ``LSTMParams``, carry ``LSTMCarry``).

  Args:
    input_transform: the cell's ``input_transform(params, xs)`` (checks params and inputs, ``x W_i + b``).
    act: the candidate/output nonlinearity (elementwise).
    gate_act: the gates' nonlinearity (elementwise).
    hidden_size: ``H``.
    dtype: the compute dtype of the matrix products (``None``: promoted).
    precision: their ``jax.lax.Precision``.

  Returns:
    ``sequence(params, carry, xs: [T, *B, F], mask: bool[T, *B] or None) -> (carry, hs: [T, *B, H])``, equal to
    the scan of the cell's step, with the derivative rule described in the module docstring.
  """
  H = hidden_size

  def recurrent(h, w_h):
    return _dense.recurrent(h, w_h, dtype, precision)

  def forward(params, carry, xs, mask, options, keep):
    """The scan of ``step``; with ``keep``, also the tangent coefficients of every step."""

    def body(c, u, m):
      z = (u + recurrent(c.h, params.w_h)).astype(c.c.dtype)
      zi, zf, zg, zo = jnp.split(z, 4, axis=-1)
      if keep:
        (i, di), (f, df), (g, dg), (o, do) = [
            _linear_coefficients(a, zz) for a, zz in ((gate_act, zi), (gate_act, zf), (act, zg), (gate_act, zo))]
        new_c = f * c.c + i * g
        tc, dtc = _linear_coefficients(act, new_c)
      else:
        i, f, g, o = gate_act(zi), gate_act(zf), act(zg), gate_act(zo)
        new_c = f * c.c + i * g
        tc = act(new_c)
      h = o * tc
      new, h = sequences.masked_step(m, c._replace(h=h, c=new_c), c, h)
      if not keep:
        return new, h
      coef = jnp.concatenate([di * g, df * c.c, i * dg, do * tc], axis=-1)  # [*B, 4H]: dz -> (dc, dh) parts
      return new, (h, (c.h, coef, f, o * dtc))

    return _scan_steps(input_transform, params, carry, xs, mask, body, options)

  def tangent_inputs(params, xs, h_prev, d_params, d_xs):
    """``a_t = d(x_t W_i + b) + h_{t-1} dW_h`` for all steps at once, ``[T, *B, 4H]``; ``None`` if all zero."""
    terms = [_input_tangent(input_transform, params, xs, d_params, d_xs, ("w_h",))]
    if not _is_zero(d_params.w_h):
      terms.append(recurrent(_rows(h_prev), d_params.w_h))
    return _reshape_rows(_sum(terms), xs.shape[:-1])

  def sequence_jvp(options, primals, tangents):
    params, carry, xs, mask = primals
    d_params, d_carry, d_xs, _ = tangents
    final, (hs, (h_prev, coef, f, q)) = forward(params, carry, xs, mask, options, keep=True)
    a = tangent_inputs(params, xs, h_prev, d_params, d_xs)
    cd = _dense.compute_dtype(dtype, params.w_h)
    w_h_t = params.w_h.astype(cd).T  # [4H, H], transposed once: the reverse pass multiplies by it in its loop
    d_carry = _zeros_for_symbolic(d_carry, carry)

    def body(dc, inp):
      a_t, k, f_t, q_t, m = inp
      dz = _dot_t(dc.h.astype(cd), w_h_t, precision)
      if a_t is not None:
        dz = a_t.astype(cd) + dz
      kz = k * dz.astype(k.dtype)
      ki, kf, kg, ko = jnp.split(kz, 4, axis=-1)
      new_c = ki + kf + kg + f_t * dc.c
      h = ko + q_t * new_c
      return sequences.masked_step(m, dc._replace(h=h, c=new_c), dc, h)

    d_final, d_hs = jax.lax.scan(body, d_carry, (a, coef, f, q, mask), unroll=options.unroll)
    return (final, hs), (d_final, d_hs)

  return _with_jvp(forward, sequence_jvp)


def gru_sequence(input_transform: Callable, act: Callable, gate_act: Callable, hidden_size: int,
                 dtype: Optional[Any], precision: Any) -> Callable:
  """A :class:`jaxrnn.types.SequenceFn` for :func:`jaxrnn.gru` with ``reset_after=True`` (``GRUParams``).

  The step (``u = x W_i + b`` in the carry dtype, ``m = h_{t-1} W_hn + b_hn``):
  ``r = s(u_r + h W_hr)``, ``z = s(u_z + h W_hz)``, ``n = act(u_n + r * m)``, ``h_t = (1 - z) n + z h_{t-1}``.
  Its tangent is ``dh_t = p_t + K_t * (dh_{t-1} W_h) (summed over the r, z, n blocks) + z_t dh_{t-1}`` where
  ``p_t`` (everything that does not depend on ``dh_{t-1}``: ``du``, ``h_{t-1} dW_h``, ``db_hn``) is computed for
  all steps before the loop. Same arguments and contract as :func:`lstm_sequence`.
  """
  H = hidden_size

  def recurrent(h, w_h):
    return _dense.recurrent(h, w_h, dtype, precision)

  def forward(params, carry, xs, mask, options, keep):

    def body(c, u, msk):
      h_prev = c.h
      cdt = h_prev.dtype
      u_r, u_z, u_n = jnp.split(u.astype(cdt), 3, axis=-1)
      hw = recurrent(h_prev, params.w_h).astype(cdt)
      hw_r, hw_z, hw_n = jnp.split(hw, 3, axis=-1)
      m = _dense.add_bias(hw_n, params.b_hn)
      if keep:
        r, dr = _linear_coefficients(gate_act, u_r + hw_r)
        z, dz = _linear_coefficients(gate_act, u_z + hw_z)
        n, dn = _linear_coefficients(act, u_n + r * m)
      else:
        r, z = gate_act(u_r + hw_r), gate_act(u_z + hw_z)
        n = act(u_n + r * m)
      h = (1 - z) * n + z * h_prev
      new, h = sequences.masked_step(msk, c._replace(h=h), c, h)
      if not keep:
        return new, h
      k_n = (1 - z) * dn  # dh/du_n
      k_h = jnp.concatenate([k_n * m * dr, dz * (h_prev - n), k_n * r], axis=-1)  # dh/d(h W_h), blocks r, z, n
      return new, (h, (h_prev, k_h, k_n, z))

    return _scan_steps(input_transform, params, carry, xs, mask, body, options)

  def step_inputs(params, xs, h_prev, k_h, k_n, d_params, d_xs):
    """``p_t``: the part of ``dh_t`` that does not depend on ``dh_{t-1}``, for all steps at once (or ``None``)."""
    cdt = k_h.dtype
    du = _input_tangent(input_transform, params, xs, d_params, d_xs, ("w_h", "b_hn"))
    e = None if _is_zero(d_params.w_h) else recurrent(_rows(h_prev), d_params.w_h).astype(cdt)
    if params.b_hn is not None and not _is_zero(d_params.b_hn):
      db = jnp.concatenate([jnp.zeros((2 * H,), cdt), d_params.b_hn.astype(cdt)])
      e = _dense.add_bias(jnp.zeros((1, 3 * H), cdt) if e is None else e, db)
    if du is None and e is None:
      return None
    k = _rows(k_h)
    terms = []
    if du is not None:  # dh/du: the r, z blocks as for h W_h, the n block k_n
      k_u = jnp.concatenate([k[:, :2 * H], _rows(k_n)], axis=-1)
      terms.append(k_u * du.astype(cdt))
    if e is not None:
      terms.append(k * e)
    # The sum over gate blocks as a reshape: its transpose is a broadcast (slices would transpose to 3 pads).
    p = _sum(terms)
    p = p.reshape(p.shape[:-1] + (3, H)).sum(-2)
    return _reshape_rows(p, xs.shape[:-1])

  def sequence_jvp(options, primals, tangents):
    params, carry, xs, mask = primals
    d_params, d_carry, d_xs, _ = tangents
    final, (hs, (h_prev, k_h, k_n, z)) = forward(params, carry, xs, mask, options, keep=True)
    p = step_inputs(params, xs, h_prev, k_h, k_n, d_params, d_xs)
    cd = _dense.compute_dtype(dtype, params.w_h)
    w_h_t = params.w_h.astype(cd).T  # [3H, H], transposed once: the reverse pass multiplies by it in its loop
    d_carry = _zeros_for_symbolic(d_carry, carry)

    def body(dc, inp):
      p_t, k, z_t, msk = inp
      dhw = _dot_t(dc.h.astype(cd), w_h_t, precision).astype(k.dtype)
      kh = k * dhw
      h = kh.reshape(kh.shape[:-1] + (3, H)).sum(-2) + z_t * dc.h
      if p_t is not None:
        h = h + p_t
      return sequences.masked_step(msk, dc._replace(h=h), dc, h)

    d_final, d_hs = jax.lax.scan(body, d_carry, (p, k_h, z, mask), unroll=options.unroll)
    return (final, hs), (d_final, d_hs)

  return _with_jvp(forward, sequence_jvp)
