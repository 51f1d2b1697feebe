"""The LSTM's whole-sequence path: a ``jax.custom_jvp`` whose tangent recurrence is linear and lean.

Why (issue 5, XLA:CPU, one thread, B=32 T=128 F=128 H=256): differentiating the scan of ``step`` gives a backward
loop that, at every step, besides the truly sequential ``dz_t W_h^T``, accumulates the kernel gradients
(``dW_h += h_{t-1}^T dz_t``, ``dW_i += x_t^T dz_t``: two transposed-operand products plus a read-modify-write of
the ``[H + F, 4H]`` accumulators), computes ``dx_t = dz_t W_i^T``, and multiplies ``dz_t`` by ``W_h`` through a
transposed operand. Timed alone (``benchmarks/backward_budget.py``) these in-loop pieces cost ~105 ms; the same
FLOPs as one ``dz W_h^T`` loop on a pre-transposed kernel plus three large products after it cost ~75 ms.

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

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from jaxrnn import sequences
from jaxrnn.cells import _dense


def _linear_coefficients(act: Callable, z: jax.Array):
  """``(act(z), act'(z))`` for an elementwise ``act`` (by forward-mode AD, so any callable works)."""
  return jax.jvp(act, (z,), (jnp.ones_like(z),))


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

  def forward(params, carry, xs, mask, keep):
    """The scan of ``step``; with ``keep``, also the tangent coefficients of every step."""
    hoist = jax.default_backend() != "cpu"  # as jaxrnn.unroll's default: see its ``hoist``
    us = input_transform(params, xs) if hoist else xs

    def body(c, inp):
      u, m = inp
      if not hoist:
        u = input_transform(params, u)
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
      new = c._replace(h=h, c=new_c)
      if m is not None:
        keep_m = lambda n, old: jnp.where(sequences.expand_to(m, n.ndim), n, old)
        new = jax.tree.map(keep_m, new, c)
        h = keep_m(h, jnp.zeros_like(h))
      if not keep:
        return new, h
      coef = jnp.concatenate([di * g, df * c.c, i * dg, do * tc], axis=-1)  # [*B, 4H]: dz -> (dc, dh) parts
      return new, (h, (c.h, coef, f, o * dtc))

    return jax.lax.scan(body, carry, (us, mask))

  def tangent_inputs(params, xs, h_prev, d_params, d_xs):
    """``a_t = d(x_t W_i + b) + h_{t-1} dW_h`` for all steps at once, ``[T, *B, 4H]``; symbolic zeros skipped.

    The products run on rows ``[T * B, .]``: transposed (reverse mode), a 2-D ``[T * B, n]^T @ [T * B, 4H]`` is
    one plain GEMM on XLA:CPU, where a contraction over the two axes ``(T, B)`` made XLA copy ``dz`` into a
    transposed layout first (2x slower).
    """
    lead = xs.shape[:-1]
    flat = lambda a: a if isinstance(a, SymbolicZero) else a.reshape((-1, a.shape[-1]))
    xs, d_xs, h_prev = flat(xs), flat(d_xs), flat(h_prev)
    terms = []
    primals = (params._replace(w_h=None), xs)
    tangents = (d_params._replace(w_h=None), d_xs)
    leaves, treedef = jax.tree.flatten(primals)
    t_leaves = jax.tree.leaves(tangents, is_leaf=lambda t: isinstance(t, SymbolicZero))
    live = [not isinstance(t, SymbolicZero) for t in t_leaves]
    if any(live):
      def transform(*live_leaves):
        it = iter(live_leaves)
        p, x = jax.tree.unflatten(treedef, [next(it) if l else a for a, l in zip(leaves, live)])
        return input_transform(p._replace(w_h=params.w_h), x)
      terms.append(jax.jvp(transform, [a for a, l in zip(leaves, live) if l],
                           [t for t, l in zip(t_leaves, live) if l])[1])
    if not isinstance(d_params.w_h, SymbolicZero):
      terms.append(recurrent(h_prev, d_params.w_h))
    if not terms:
      return None
    a = terms[0] if len(terms) == 1 else terms[0] + terms[1].astype(terms[0].dtype)
    return a.reshape(lead + a.shape[-1:])

  @jax.custom_jvp
  def sequence(params, carry, xs, mask):
    return forward(params, carry, xs, mask, keep=False)

  def sequence_jvp(primals, tangents):
    params, carry, xs, mask = primals
    d_params, d_carry, d_xs, _ = tangents
    final, (hs, (h_prev, coef, f, q)) = forward(params, carry, xs, mask, keep=True)
    a = tangent_inputs(params, xs, h_prev, d_params, d_xs)
    cd = _dense.compute_dtype(dtype, params.w_h)
    w_h_t = params.w_h.astype(cd).T  # [4H, H], transposed once: the reverse pass multiplies by it in its loop
    d_carry = jax.tree.map(lambda t, p: jnp.zeros_like(p) if isinstance(t, SymbolicZero) else t, d_carry, carry,
                           is_leaf=lambda t: isinstance(t, SymbolicZero))

    def body(dc, inp):
      a_t, k, f_t, q_t, m = inp
      dz = jax.lax.dot_general(dc.h.astype(cd), w_h_t, (((dc.h.ndim - 1,), (1,)), ((), ())), precision=precision)
      if a_t is not None:
        dz = a_t.astype(cd) + dz
      kz = k * dz.astype(k.dtype)
      ki, kf, kg, ko = jnp.split(kz, 4, axis=-1)
      new_c = ki + kf + kg + f_t * dc.c
      h = ko + q_t * new_c
      new = dc._replace(h=h, c=new_c)
      if m is not None:
        keep_m = lambda n, old: jnp.where(sequences.expand_to(m, n.ndim), n, old)
        new = jax.tree.map(keep_m, new, dc)
        h = keep_m(h, jnp.zeros_like(h))
      return new, h

    d_final, d_hs = jax.lax.scan(body, d_carry, (a, coef, f, q, mask))
    return (final, hs), (d_final, d_hs)

  sequence.defjvp(sequence_jvp, symbolic_zeros=True)

  def run(params, carry, xs, mask):
    return sequence(params, carry, xs, mask)

  return run
