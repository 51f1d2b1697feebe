"""A fused whole-sequence path for dense recurrent cells: a ``jax.custom_jvp`` whose tangent recurrence is lean.

A dense recurrent cell's step is ``(carry', h) = pointwise(params, carry, u_t, h_{t-1} W_h)`` with
``u_t = input_transform(params, x_t)`` (the input projection ``x_t W_i + b``) and one recurrent product: the LSTM,
the GRU (``reset_after=True``). The cell's own ``step_transformed`` is that composition, and this module calls the
same ``pointwise`` function: there is one source of truth for the math.

Why (issue 5, XLA:CPU, one thread, B=32 T=128 F=128 H=256): differentiating the scan of ``step`` gives a backward
loop that, at every step, besides the truly sequential ``dz_t W_h^T``, accumulates the kernel gradients
(``dW_h += h_{t-1}^T dz_t``, ``dW_i += x_t^T dz_t``: two transposed-operand products plus a read-modify-write of
the ``[H + F, nH]`` accumulators) and computes ``dx_t = dz_t W_i^T``. Timed alone
(``benchmarks/backward_budget.py``) these in-loop pieces cost ~90-105 ms; the same FLOPs as one ``dz W_h^T`` loop
plus three large products after it cost ~75 ms.

Here the forward pass is the same scan (same operations, same values); with tangents it also keeps, per step, the
linearisation of ``pointwise`` that ``jax.linearize`` returns (its residuals; nothing is derived by hand). The JVP
rule is then

* outside any loop, time-parallel: ``du_t = d input_transform(params, x_t)`` and ``e_t = h_{t-1} dW_h`` for all
  ``t`` at once;
* one linear scan: ``(dcarry_t, dh_t) = L_t(dcarry_{t-1}, du_t, dh_{t-1} W_h + e_t)`` with ``L_t`` the linearised
  ``pointwise`` of step ``t`` (frozen where the mask is False).

Forward-mode AD uses this rule directly. Reverse mode transposes it (JAX does), which gives exactly the cuDNN
structure: a backward loop with only the transposed ``L_t`` (elementwise) and ``dz_t W_h^T`` (on a kernel
transposed once, outside), and the weight and input gradients as large products over all ``T * B`` rows after it.

On CPU the native loop (:mod:`jaxrnn.cells._native_scan`) runs this structure in C++, forward and backward, and
this path is its pure-JAX form (and its forward mode).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, FrozenSet, Mapping, Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from jaxrnn import sequences
from jaxrnn.cells import _dense
from jaxrnn.kernels import choice
from jaxrnn.types import FUSED_SCAN, SequencePath

RECURRENT = "w_h"  # the params field of the recurrent kernel [H, nH]


def _is_zero(t: Any) -> bool:
  return isinstance(t, SymbolicZero)


def _rows(a: jax.Array) -> jax.Array:
  """``[T, *B, n] -> [T * B, n]``.

  The time-parallel tangent products run on 2-D rows: transposed (reverse mode), ``[T * B, n]^T @ [T * B, N]`` is
  one plain GEMM on XLA:CPU, where a contraction over the two axes ``(T, B)`` made XLA copy the cotangent into a
  transposed layout first (2x slower).
  """
  return a.reshape((-1, a.shape[-1]))


def _only(params: Any, fields: Sequence[str]) -> Any:
  """``params`` with every field not in ``fields`` set to ``None`` (an empty subtree)."""
  return params._replace(**{f: None for f in params._fields if f not in fields})


def _without(params: Any, fields: Sequence[str]) -> Any:
  return params._replace(**{f: None for f in fields})


def _live(tree: Any) -> bool:
  """Whether a tangent pytree has any leaf that is not a symbolic zero."""
  return any(not _is_zero(t) for t in jax.tree.leaves(tree, is_leaf=_is_zero))


def _input_tangent(input_transform: Callable, params: Any, xs: jax.Array, d_params: Any, d_xs: Any,
                   skip: Sequence[str]) -> Optional[jax.Array]:
  """The tangent of ``input_transform(params, xs)`` on rows ``[T * B, N]`` (``None`` if every tangent is zero).

  Only the live (non-symbolic-zero) tangents of ``params`` (less the fields ``skip``, which ``input_transform``
  does not read) and ``xs`` enter.
  """
  keep = {f: getattr(params, f) for f in skip}
  primals = (_without(params, skip), _rows(xs))
  tangents = (_without(d_params, skip), d_xs if _is_zero(d_xs) else _rows(d_xs))
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


def _linearise(pointwise: Callable, pw_params: Any, carry: Any, u: jax.Array, hw: jax.Array,
               live: Tuple[bool, bool]) -> Tuple[Any, list, Any]:
  """``((carry', h), leaves, treedef)``: ``pointwise`` at one step and its linearisation (``jax.linearize``), whose
  residuals are ``leaves``; ``live``: whether the params (``pw_params``) and ``u`` have tangents (the carry and
  ``hw`` always have)."""
  live_p, live_u = live
  args = (pw_params if live_p else None, carry, u if live_u else None, hw)

  def f(p, c, u_, hw_):
    return pointwise(pw_params if p is None else p, c, u if u_ is None else u_, hw_)

  out, lin = jax.linearize(f, *args)
  leaves, treedef = jax.tree.flatten(lin)
  return out, leaves, treedef


def fused_sequence(input_transform: Callable, pointwise: Callable, pointwise_fields: Tuple[str, ...],
                   dtype: Optional[Any], precision: Any) -> Callable:
  """``run(params, carry, xs, mask, options) -> (carry, hs)``: the scan of ``step``, with the lean JVP rule.

  Args:
    input_transform: the cell's ``input_transform(params, xs)`` (checks params and inputs, ``x W_i + b``).
    pointwise: ``pointwise(params, carry, u, hw) -> (carry, h)``, everything of ``step_transformed`` after the
      recurrent product ``hw = carry.h W_h`` (``_dense.recurrent``); it reads only the params fields
      ``pointwise_fields``. The cell's ``step_transformed`` must be exactly this composition.
    pointwise_fields: the params fields ``pointwise`` reads (``()`` for the LSTM, ``("b_hn",)`` for the GRU);
      ``input_transform`` reads the others but ``w_h``.
    dtype: the compute dtype of the matrix products (``None``: promoted).
    precision: their ``jax.lax.Precision``.

  Returns:
    A :class:`jaxrnn.types.SequenceFn` for inputs ``xs: [T, *B, F]`` and ``mask: bool[T, *B]`` or ``None``,
    equal to the scan of the cell's step; ``options.hoist`` and ``options.unroll`` apply to its loops.
  """
  skip = (RECURRENT,) + tuple(pointwise_fields)

  def forward(params, carry, xs, mask, options, live=None, treedef: Optional[dict] = None):
    """The scan of ``step``; with ``live`` (which inputs of ``pointwise`` have tangents), also the residuals of
    ``pointwise``'s linearisation at every step (their treedef goes into the dict ``treedef``)."""
    hoist = sequences.default_hoist() if options.hoist is None else options.hoist
    pw_params = _only(params, pointwise_fields)
    us = input_transform(params, xs) if hoist else xs

    def body(c, inp):
      u, m = inp
      u = u if hoist else input_transform(params, u)
      hw = _dense.recurrent(c.h, params.w_h, dtype, precision)
      if live is None:
        new, h = pointwise(pw_params, c, u, hw)
        return sequences.masked_step(m, new, c, h)
      assert treedef is not None  # given with live
      (new, h), leaves, treedef["lin"] = _linearise(pointwise, pw_params, c, u, hw, live)
      new, h = sequences.masked_step(m, new, c, h)
      return new, (h, (c.h, leaves))

    return jax.lax.scan(body, carry, (us, mask), unroll=sequences.scan_unroll(options.unroll))

  def tangent_inputs(params, xs, d_params, d_xs):
    """``(d_pw, du, live)``: the tangents of ``pointwise``'s params and of ``u`` (rows, or ``None``), and which
    of the two are live."""
    d_pw = _only(d_params, pointwise_fields)
    du = _input_tangent(input_transform, params, xs, d_params, d_xs, skip)
    return d_pw, du, (_live(d_pw), du is not None)

  def tangents(params, carry, xs, mask, options, d_params, d_carry, d_pw, du, live, h_prev, lin_leaves, treedef):
    """The tangent recurrence: ``(d_final, d_hs)``."""
    linearised = lambda leaves: jax.tree.unflatten(treedef["lin"], leaves)
    lead = xs.shape[:-1]
    du = None if du is None else du.reshape(lead + du.shape[-1:])
    e = None
    if not _is_zero(d_params.w_h):  # h_{t-1} dW_h for all steps, one product over T * B rows
      e = _dense.recurrent(_rows(h_prev), d_params.w_h, dtype, precision)
      e = e.reshape(lead + e.shape[-1:])
    d_pw = _zeros_for_symbolic(d_pw, _only(params, pointwise_fields)) if live[0] else None
    cd = _dense.compute_dtype(dtype, params.w_h)
    w_h_t = params.w_h.astype(cd).T  # [nH, H], transposed once: the reverse pass multiplies by it in its loop
    d_carry = _zeros_for_symbolic(d_carry, carry)

    def body(dc, inp):
      du_t, e_t, leaves, m = inp
      dhw = _dot_t(dc.h.astype(cd), w_h_t, precision)
      if e_t is not None:
        dhw = dhw + e_t.astype(dhw.dtype)
      new, h = linearised(leaves)(d_pw, dc, du_t, dhw)  # None: an input without tangent (an empty pytree)
      new, h = sequences.masked_step(m, new, dc, h)
      return new, h

    return jax.lax.scan(body, d_carry, (du, e, lin_leaves, mask), unroll=sequences.scan_unroll(options.unroll))

  def run_jvp(options, primals, tangents_in):
    params, carry, xs, mask = primals
    d_params, d_carry, d_xs, _ = tangents_in
    d_pw, du, live = tangent_inputs(params, xs, d_params, d_xs)
    treedef = {}
    final, (hs, (h_prev, lin_leaves)) = forward(params, carry, xs, mask, options, live, treedef)
    d_final, d_hs = tangents(params, carry, xs, mask, options, d_params, d_carry, d_pw, du, live, h_prev,
                             lin_leaves, treedef)
    return (final, hs), (d_final, d_hs)

  @functools.partial(jax.custom_jvp, nondiff_argnums=(4,))
  def run(params, carry, xs, mask, options):
    return forward(params, carry, xs, mask, options)

  run.defjvp(run_jvp, symbolic_zeros=True)
  return run


def checked(run: Callable, check_params: Callable, carry_type: type, hidden_size: Union[int, Mapping[str, int]],
            name: str, routes: Optional[Mapping[str, choice.Route]] = None,
            honours: FrozenSet[str] = FUSED_SCAN) -> SequencePath:
  """A cell's :class:`jaxrnn.SequencePath`: checks params and carry, then calls ``run`` (or the kernel that
  ``options.kernel`` chooses among ``routes``, see :mod:`jaxrnn.kernels.choice`; ``name`` is the cell's name and
  its entry in the defaults). It is a fused form of the scan of ``step``: it honours ``hoist``, ``unroll`` and
  ``kernel`` (:data:`jaxrnn.types.FUSED_SCAN`; with the native loop where the call fits,
  :data:`jaxrnn.types.NATIVE`); for ``remat``, :func:`jaxrnn.unroll` scans ``step``. ``kernel="xla"`` asks for the
  JAX path, so it never runs the native loop."""
  routes = dict(routes or {})

  def sequence(params, carry, xs, mask, options):
    check_params(params)
    _dense.check_carry(carry, carry_type, xs.shape[1:-1], hidden_size)
    kernel = choice.resolve(options.kernel, name, name, ("xla",) + tuple(routes),
                            lambda k: routes[k].misfit(params, carry, xs, options))
    if kernel != "xla":
      return routes[kernel].run(params, carry, xs, mask)
    if options.kernel == "xla" and options.native is None:
      options = options._replace(native=False)  # the JAX path was asked for by name
    return run(params, carry, xs, mask, options)

  return SequencePath(sequence, honours)
