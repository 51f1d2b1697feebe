"""The native CPU form of a dense cell's sequence path: the time loop in C++ (``jaxrnn/native/rnn.cc``), forward
and backward, in two forms.

* The default (``RunOptions(native=None)``, where :data:`AUTO` says; :func:`native_derivative`): a ``jax.custom_jvp``
  whose primal is the native forward loop (an undifferentiated run is that loop alone) and whose tangent is one
  primitive, linear in the tangents (:data:`_tangent_p`): evaluated (``jax.jvp``) it is ``jax.jvp`` of the pure-JAX
  path; transposed (``jax.grad``, ``jax.vjp``) it is the native backward loop, at the residuals the native forward
  kept. So the default trains at native speed and keeps forward mode and higher orders (the backward is itself a
  ``jax.custom_jvp`` whose rule is the pure-JAX path's vjp, differentiated by JAX).
* ``native=True``: a ``jax.custom_vjp`` whose backward loop is native too (no forward mode: ``jax.jvp`` raises
  JAX's error there); the same loops as the default.

Split of the work: the native forward loop runs, per step, the input projection ``x_t W_i + b`` beside
``h_{t-1} W_h`` (as the pure-JAX path does on CPU, where ``hoist=None`` projects inside the loop; at up to
:data:`HOIST_MAX_ROWS` examples per step, or with ``hoist=True``, JAX computes it for all steps before the loop) and
the gate arithmetic; the native backward loop runs the gate derivatives and ``dz_t W_h^T``, then the kernels' and
inputs' gradients ``sum_t h_{t-1}^T dz_t``, ``x^T dz`` and ``dz W_i^T`` as large products (numpy's OpenBLAS, one
thread per worker: XLA:CPU's dot is slower on these transposed operands), over blocks of steps where ``dz`` is large
(:data:`DZ_BLOCK_BYTES`); ``b``'s is ``dz`` summed. The gate
arithmetic in C++ restates the cell's ``pointwise`` function (no C++ can call it), and the loops restate its
``input_transform``, ``x W_i + b``; the parity tests (``tests/test_native.py``) hold them equal.

Params, carry and inputs stored in bfloat16 or float16 (:data:`HALF`) run the same float32 loops, upcast before and
rounded after (:func:`in_float32`).

:func:`with_native` wraps a pure-JAX sequence function: the native loop runs when the call fits (:func:`fits`),
the pure-JAX one otherwise, and ``RunOptions(native=...)`` chooses (``None``: native when it fits and the measured
rule :func:`auto_refuses` allows; ``False``: never; ``True``: the all-native ``custom_vjp``, or a ``ValueError``
saying why it does not fit).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple, Optional, Sequence, Tuple

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
from jax.core import ShapedArray
from jax.interpreters import ad, batching, mlir

from jaxrnn import native
from jaxrnn.cells import _dense, _fused_scan
from jaxrnn.types import RunOptions
from jaxrnn.unroll import unroll

# native=None and the native loop (rows: the examples per step, batch axes flattened).
#
# AUTO: where native=None takes it, by rows and by the multiply-adds of one step's two products,
# rows * (F + H) * G H (train or inference cannot be known here). Measured (/ the pure-JAX path; wall clock, 2
# threads, benchmarks/native_default.py --repeats 5-7 --clock wall, medians; the script widens the rule):
#   training, the default (native forward and backward loops; native_derivative), 2026-11-30 02:40 (shared machine,
#   load ~1.8): LSTM W1 (B=32 T=128 F=128 H=256, 1.3e7 MACs/step) 0.65, W2 (B=64 T=512 F=128 H=128, 8.4e6) 0.69, M2
#   (B=128 T=128 F=H=256, 6.7e7) 0.85, W4 (B=128 T=256 F=H=512, 2.7e8 = 2^28) 0.78; GRU W1 0.72, W2 0.84, M2 0.86,
#   W4 0.88; simple RNN W1 0.42, W2 0.77, W4 0.81. One example per step (W3, B=1 T=1024 F=64 H=128, 1e5; the
#   previous run): LSTM 0.39, GRU 0.44, simple RNN 0.56.
#   inference: W4 LSTM 0.97, GRU 0.94, simple RNN 0.85; W3 LSTM 0.66, GRU 0.78, simple RNN 0.83; W2 LSTM 0.56,
#   GRU 0.58; M1 (B=64 T=128 F=H=256) LSTM 0.70, GRU 0.77 (one thread).
# W4 used to be slower native (training 1.01-1.11 of the pure path, so the rule stopped at 2^26): the native loop's
# two-thread split went solo for 500 ms whenever one helper was descheduled for 2 ms (rnn.cc's kSoloShare fixed
# that), and the input side's gradients were XLA's dot (now OpenBLAS's, in the backward loop's call).
# gru(reset_after=False) ("gru_reset_before": two products a step, the second on r h; its fallback is the scan of
# step), default / pure-JAX, 2026-11-30 13:49 (Xeon with AVX-512, 2 vCPUs, load ~2.8; native_default.py --cell
# gru_reset_before --cell gru --workload W1..W4 --mode train --mode infer --repeats 5): training W1 0.49, W2 0.69, W3
# 0.17, W4 0.94; inference W1 0.48, W2 0.80, W3 0.47, W4 1.05 (gru in the same run: W4 inference 1.05, training 0.94).
# lstmp (P = H / 2; two products a step, the second the projection; fallback: the scan of step), the same command
# with --cell lstmp, 14:10 (load ~1.2): training W1 0.42, W2 0.66, W3 0.48, W4 0.89; inference W1 0.75, W2 0.63, W3
# 0.93, W4 1.07. Its multiply-adds per step count the projection too (step_macs).
# So: native where a step has at most 2^28 multiply-adds (W1-W4, M1, M2); above, nothing was measured. min_rows is
# 1: at B=1 the loop hoists the input projection and splits a step over two threads (HOIST_MAX_ROWS; rnn.cc's
# split).
# hoist=None: the native loop gets x W_i + b of all steps from one product before the loop up to this many rows
# (batch axes flattened); above, it computes it per step (no [T, B, G H] buffer). Measured (wall clock, 2 threads,
# quiet machine, medians of 15-31 interleaved calls, hoisted / inside): B=1 T=1024 F=64 H=128 LSTM 5.4 / 6.4 ms,
# GRU 4.5 / 5.0 (one thread); B=4 LSTM 12.6 / 13.2; inference B=32 (W1) LSTM 50 / 36, B=64 (W2) LSTM 134 / 115, GRU
# 115 / 93; training W1 / W2 within 2%.
HOIST_MAX_ROWS = 4

# Half-precision storage: params, carry and inputs of these dtypes run the float32 loop (upcast before it, its results
# rounded to the dtypes the pure-JAX path returns: in_float32), as oneDNN's and cuDNN's bfloat16 RNNs compute their
# gates in float32. In bfloat16 native=None takes it from min_rows at every size, above 2^28 multiply-adds per step
# too: XLA:CPU's bfloat16 is slow, and the native loop won everywhere it was measured. Default / the pure-JAX path in
# bfloat16, inference, training (`benchmarks/native_default.py --cell lstm --cell gru --cell simple_rnn --workload
# W1 --workload W3 --size 256,16,512,512 --dtype bfloat16 --repeats 5`, wall clock, 2 threads, medians, shared
# machine, 2026-11-30 08:04):
#   LSTM W1 0.44, 0.30; W3 0.03, 0.01; B=256 T=16 F=H=512 (2^29 multiply-adds a step) 0.94, 1.15 (native=True 0.72;
#   again with --repeats 7: 0.71, native=True 0.66). GRU W1 0.39, 0.16; W3 0.04, 0.01; 2^29 0.85, 0.59. Simple RNN
#   W1 0.25, 0.19; W3 0.02, 0.01; 2^29 0.82, 0.77.
# In float16 the pure-JAX path is less slow, so native=None keeps float32's rule (at most 2^28). The same command with
# --dtype float16 (W1, W3) and again with --cell lstm --size 256,16,512,512:
#   LSTM W1 0.70, 0.58; W3 0.65, 0.41; 2^29 1.05, 0.82 (native=True 0.99, 0.97). GRU W1 0.53, 0.55; W3 1.05
#   (native=True 0.81), 0.52. Simple RNN W1 0.53, 0.37; W3 0.99, 0.37.
HALF = (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))


class AutoRange(NamedTuple):
  """Where ``native=None`` runs a cell's native loop: at least ``min_rows`` examples per step and at most
  ``max_step_macs`` multiply-adds in a step's products (``rows * (F + H) * G H``)."""

  min_rows: int
  max_step_macs: int


AUTO = {kind: AutoRange(min_rows=1, max_step_macs=2 ** 28)
        for kind in ("lstm", "gru", "gru_reset_before", "simple_rnn", "lstmp")}
KINDS = {"lstm": 0, "gru": 1, "simple_rnn": 2, "gru_reset_before": 3, "lstmp": 4}
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1, "gru_reset_before": 3, "lstmp": 4}
WITH_C = ("lstm", "lstmp")  # the kinds whose carry has a cell state c


def _call(target: str, results: list, *args: Any, **attrs: Any):
  if not native.available():  # loads the library and registers its targets
    raise RuntimeError(f"the native CPU path is not available: {native.reason()}")
  return jax.ffi.ffi_call(target, results, vmap_method="sequential")(*args, **{k: np.int64(v) for k, v in
                                                                                attrs.items()})


def _weights(kind: str, params: Any):
  """``(w_i, b, w_h, extra)`` as the native loop takes them: a missing bias as an empty array; ``extra``: for the GRU
  ``b_hn`` (missing: zeros), for the LSTMP the projection ``w_r``, else empty."""
  H = params.w_h.shape[0]
  b = params.b if params.b is not None else jnp.zeros((0,), jnp.float32)
  if kind in ("gru", "gru_reset_before"):
    extra = params.b_hn if params.b_hn is not None else jnp.zeros((H,), jnp.float32)
  elif kind == "lstmp":
    extra = params.w_r
  else:
    extra = jnp.zeros((0,), jnp.float32)
  return params.w_i, b, params.w_h, extra


INFER, BACKWARD_RESIDUALS = 0, 1  # what the native forward keeps besides hs (its `train` attribute)

# The native backward keeps dz (the cotangent of every step's gate pre-activations, B G H floats a step) for at most
# this many bytes' worth of steps (at least one): it runs the loop over that many steps, then their share of the
# products after it (dw, dw_i, dx), then the next block of steps in the same buffer. A buffer of all T steps (256 MiB
# at LSTM W4 training, B=128 T=256 F=H=512) is written once and read once a call, and XLA allocates it afresh with
# every call's temporaries, so each of its pages is faulted in and zeroed again (about 90,000 of a W4 call's
# 280,000-310,000 page faults). jax.grad of the default path at W4, 2 threads, medians of 4 calls in three rounds of
# interleaved processes, blocks of 16 steps (16 MiB) against one block: LSTM 1857, 1830, 1805 ms against 2166, 2006,
# 1967; GRU 1889, 1444, 1494 against 1522, 1529, 1577; LSTM at B=128 T=128 F=H=256 (4 blocks) 306, 300, 285 against
# 295, 316, 326. The W1-W3 sizes of benchmarks/rnn_layers.py fit one block.
DZ_BLOCK_BYTES = 16 << 20


def dz_steps(steps: int, batch: int, width: int) -> int:
  """The steps of dz the native backward keeps at once (its blocks): ``width`` = G H floats a row."""
  return int(max(1, min(steps, DZ_BLOCK_BYTES // max(1, 4 * batch * width))))


def projects(options: RunOptions, rows: int) -> bool:
  """Whether the native loop gets the input projection ``x W_i + b`` of all steps from one product before the loop
  (``options.hoist``; ``None``: at most :data:`HOIST_MAX_ROWS` rows) instead of computing it per step."""
  return rows <= HOIST_MAX_ROWS if options.hoist is None else bool(options.hoist)


def _forward(kind: str, relu: bool, mode: int, params, x, h0, c0, mask, project: Optional[Callable] = None):
  """The native forward loop over ``x: [B, T, F]`` (batch-major: :func:`_flat`): ``(hs [B, T, P], h_last, c_last,
  h_all, c_all, gates)``, the last three (time-major) of size 0 unless ``mode`` is ``BACKWARD_RESIDUALS`` (the
  carries and activated gates that the native backward reads). ``project``: ``None`` (the loop computes
  ``x_t W_i + b`` per step), or the cell's ``input_transform``, which JAX runs on all steps before the loop
  (hoisted: the loop reads ``[B, T, G H]``)."""
  B, T, _ = x.shape
  w_i, b, w_h, b_hn = _weights(kind, params)
  P, H = w_h.shape[0], w_h.shape[1] // GATES[kind]  # P: the carried h's width (H but for the LSTMP)
  f32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
  with_c = kind in WITH_C
  steps = T if mode == BACKWARD_RESIDUALS else 0
  gates = steps if kind != "simple_rnn" else 0
  results = [f32(B, T, P), f32(B, P), f32(B, H if with_c else 0), f32(steps, B, P), f32(steps if with_c else 0, B, H),
             f32(gates, B, 4 * H)]
  operand = x if project is None else _projection(project, params, x)
  return _call(native.FORWARD, results, operand, w_i, b, w_h, b_hn, h0, c0, mask, kind=KINDS[kind], relu=relu,
               train=mode, projected=project is not None)


def _projection(project: Callable, params, x: jax.Array) -> jax.Array:
  """``x W_i + b`` of all steps in float32: the cell's ``project``, or where the cell computes in a half dtype (it
  would round the products to it), the product in float32, as the loop computes it unprojected."""
  if jax.eval_shape(project, params, x).dtype == jnp.float32:
    return project(params, x)
  return _dense.project(x, params.w_i, params.b, jnp.float32, None)


def _backward(kind: str, relu: bool, primals, residuals, cts, need_dx: bool = True):
  """``(d_params, d_carry, d_xs)``: the native backward loop at the residuals its forward kept.

  ``primals``: ``(params, carry, xs, mask)`` of the call; ``residuals``: ``(h_all, c_all, gates)`` of
  :func:`_forward` in ``BACKWARD_RESIDUALS`` mode; ``cts``: the cotangents of ``(carry, hs)``. With ``need_dx``
  false the loop skips ``d_xs``'s product (a third of the work after the loop) and ``d_xs`` is zeros: for a caller
  that drops it (inputs not differentiated)."""
  params, carry, xs, mask = primals
  h_all, c_all, gates = residuals
  d_carry, dhs = cts
  x, h0, c0, m = _flat(kind, carry, xs, mask)  # x batch-major, as the forward's
  T, B, P = h_all.shape  # P: the carried h's width (H but for the LSTMP)
  w_i, _, w_h, extra = _weights(kind, params)
  F, GH = w_i.shape
  H = GH // GATES[kind]
  f32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
  gru = kind == "gru"
  with_c = kind in WITH_C
  w_r = extra if kind == "lstmp" else jnp.zeros((0, 0), jnp.float32)
  dc_last = d_carry.c.reshape((B, H)) if with_c else jnp.zeros((B, 0), jnp.float32)
  steps = dz_steps(T, B, GH)
  results = [f32(steps, B, GH), f32(steps if gru else 0, B, H), f32(B, P), f32(B, H if with_c else 0), f32(P, GH),
             f32(B if need_dx else 0, T, F), f32(F, GH), f32(*w_r.shape), f32(GH), f32(H if gru else 0)]
  _, _, dh0, dc0, d_w_h, dx, d_w_i, d_w_r, d_b, d_b_hn = _call(
      native.BACKWARD, results, x, w_i, w_h, w_r, h0, c0, h_all, c_all, gates, m, _batch_major(dhs),
      d_carry.h.reshape((B, P)), dc_last, kind=KINDS[kind], relu=relu)
  # The loop summed dz, the cotangent of u = x W_i + b (the input_transform of every cell with a native kind), for b;
  # b_hn is added to the candidate's recurrent term: its cotangent is dn r summed (the loop's d_b_hn; reset_before:
  # dz's candidate columns, those of d_b).
  d_params = params._replace(w_i=d_w_i, w_h=d_w_h, b=None if params.b is None else d_b)
  if gru or kind == "gru_reset_before":
    d_params = d_params._replace(b_hn=None if params.b_hn is None else (d_b_hn if gru else d_b[2 * H:]))
  if kind == "lstmp":
    d_params = d_params._replace(w_r=d_w_r)
  d_xs = _time_major(dx, xs.shape[1:-1]) if need_dx else jnp.zeros_like(xs)
  return d_params, _carry(kind, carry, xs.shape[1:-1], dh0, dc0), d_xs


def fits(kind: Optional[str], params: Any, carry: Any, xs: Any, options: RunOptions) -> Optional[str]:
  """Why the native loop cannot run this call (``None``: it can).

  It runs on the CPU backend, for a cell with the standard activations and a compute ``dtype`` of float32 or
  :data:`HALF` (:func:`standard`; ``kind`` is ``None`` otherwise), params, carry and inputs of float32 or
  :data:`HALF` (computed in float32: :func:`in_float32`), at least one step and one example,
  and run options it honours (``hoist``: see :func:`projects`; no ``unroll`` and no ``remat``: those are options of
  a scan, which the pure-JAX path runs).
  """
  if kind is None:
    return "the cell has a custom activation or a float64 compute dtype"
  if jax.default_backend() != "cpu":  # first: elsewhere the library is not even loaded (nor malloc set)
    return f"the backend is {jax.default_backend()}, not cpu"
  if not native.available():
    return native.reason()
  if options.remat is not None or "unroll" in options.set_fields():  # unroll=True included (True == 1 in Python)
    return f"run options {options} (a native loop has no scan to unroll or remat)"
  if not isinstance(xs, (jax.Array, np.ndarray)):
    return "xs is not one array"
  leaves = [l for l in jax.tree.leaves((params, carry, xs)) if l is not None]
  bad = sorted({str(l.dtype) for l in leaves if l.dtype != jnp.float32 and l.dtype not in HALF})
  if bad:
    return (f"dtypes {bad}; the native loop runs float32 (params, carry and inputs stored in "
            f"{' or '.join(map(str, HALF))} are computed in float32)")
  if xs.shape[0] == 0 or math.prod(xs.shape[1:-1]) == 0:
    return f"an empty sequence or batch (xs: {xs.shape})"
  return None


def standard(activation: Any, gate_activation: Any, dtype: Any, activations=("tanh",)) -> bool:
  """Whether a cell built with these factory arguments computes what the native loop computes: activations named
  (not callables) as the loop has them, and a compute ``dtype`` of ``None``, float32 or :data:`HALF`.

  A half compute dtype (bfloat16 products of float32 params, a mixed-precision setup) runs the float32 loop, as
  half storage does (:func:`in_float32`): the two paths agree to the compute dtype's rounding, the native one
  being the float32 computation. LSTM W1 training (``benchmarks/native_default.py --compute-dtype bfloat16``):
  the pure-JAX path in bfloat16 compute took 189 ms, the float32 native loop 76 (GRU 146 / 56). A float64 compute
  dtype asks for more than the loop computes, and keeps the pure-JAX path."""
  named = lambda a, allowed: isinstance(a, str) and a in allowed
  return (named(activation, activations) and (gate_activation is None or named(gate_activation, ("sigmoid",)))
          and (dtype is None or jnp.dtype(dtype) == jnp.float32 or jnp.dtype(dtype) in HALF))


def _carry(kind: str, carry: Any, lead: Tuple[int, ...], h: jax.Array, c: jax.Array) -> Any:
  """``carry`` with its leaves from the native loop's flat ``h`` (and ``c``), reshaped to ``lead + (H,)``."""
  fields = dict(h=h.reshape(lead + h.shape[-1:]))
  if kind in WITH_C:
    fields["c"] = c.reshape(lead + c.shape[-1:])
  return carry._replace(**fields)


def _flat(kind: str, carry: Any, xs: jax.Array, mask: Optional[jax.Array]):
  """``(x [n, T, F], h0 [n, H], c0 [n, H] or [n, 0], mask int32[T, n])``: the native loop's operands, the batch
  axes of ``xs: [T, *B, F]`` flattened to ``n``, ``x`` batch-major (:func:`_batch_major`)."""
  T, n = xs.shape[0], math.prod(xs.shape[1:-1])
  h0 = carry.h.reshape((n, carry.h.shape[-1]))
  c0 = carry.c.reshape((n, carry.c.shape[-1])) if kind in WITH_C else jnp.zeros((n, 0), jnp.float32)
  m = jnp.ones((T, n), jnp.int32) if mask is None else mask.reshape((T, n)).astype(jnp.int32)
  return _batch_major(xs), h0, c0, m


def _batch_major(a: jax.Array) -> jax.Array:
  """``[T, *B, F] -> [n, T, F]`` (``n``: the batch axes flattened), the layout of the native loop's sequences.

  :func:`jaxrnn.unroll` hands sequence paths ``[T, *B, F]``, moving the time axis of its default layout ``[*B, T,
  F]`` to the front; moving it back here makes the two transposes cancel in XLA, so a batch-major caller's
  sequences reach the loop uncopied (and a time-major caller's are transposed once: see ``rnn.cc``)."""
  moved = jnp.moveaxis(a, 0, -2)
  return moved.reshape((math.prod(moved.shape[:-2]),) + moved.shape[-2:])


def _time_major(a: jax.Array, batch: Tuple[int, ...]) -> jax.Array:
  """``[n, T, F] -> [T, *batch, F]``: the inverse of :func:`_batch_major`."""
  return jnp.moveaxis(a.reshape(batch + a.shape[1:]), -2, 0)


def _run(kind: str, relu: bool, input_transform: Callable, mode: int, params, carry, xs, mask, options):
  """``((carry, hs), (h_all, c_all, gates))``: the native forward loop over ``xs: [T, *B, F]`` (batch axes
  flattened for it), the residuals of size 0 unless ``mode`` is ``BACKWARD_RESIDUALS``; ``options.hoist`` says
  whether JAX projects the inputs before the loop (:func:`projects`)."""
  x, h0, c0, m = _flat(kind, carry, xs, mask)
  project = input_transform if projects(options, x.shape[0]) else None
  hs, h_last, c_last, *residuals = _forward(kind, relu, mode, params, x, h0, c0, m, project)
  batch = xs.shape[1:-1]
  out = (_carry(kind, carry, batch, h_last, c_last), _time_major(hs, batch))
  return out, tuple(residuals)


def all_native(kind: str, relu: bool, input_transform: Callable) -> Callable:
  """``run(params, carry, xs, mask, options)`` for ``native=True``: a ``jax.custom_vjp`` of the native forward
  loop whose backward is the native backward loop (:func:`_backward`); no forward mode."""

  @functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
  def run(params, carry, xs, mask, options):
    return _run(kind, relu, input_transform, INFER, params, carry, xs, mask, options)[0]

  def run_fwd(params, carry, xs, mask, options):
    out, residuals = _run(kind, relu, input_transform, BACKWARD_RESIDUALS, params, carry, xs, mask, options)
    return out, ((params, carry, xs, mask), residuals)

  def run_bwd(options, saved, cts):
    del options
    primals, residuals = saved
    return (*_backward(kind, relu, primals, residuals, cts), None)  # mask: no cotangent

  run.defvjp(run_fwd, run_bwd)
  return run


class _TangentSpec(NamedTuple):
  """The static parameters of :data:`_tangent_p` (hashable: the jaxpr's equation carries them)."""

  kind: str
  relu: bool
  fallback: Callable  # the pure-JAX run(params, carry, xs, mask, options) this path equals
  options: RunOptions
  primals: Any  # the treedef of (params, carry, xs, mask)
  outputs: Any  # the treedef of (carry, hs)
  shapes: Tuple[Tuple[Tuple[int, ...], Any], ...]  # (shape, dtype) of each output leaf


def _split(flat: Sequence[Any], spec: _TangentSpec):
  """``(params, carry, xs, mask), residuals, (d_params, d_carry, d_xs)`` from the primitive's flat operands."""
  n = spec.primals.num_leaves
  params, carry, xs, mask = jax.tree.unflatten(spec.primals, flat[:n])
  tangents = jax.tree.unflatten(jax.tree.structure((params, carry, xs)), flat[n + 3:])
  return (params, carry, xs, mask), tuple(flat[n:n + 3]), tangents


def _tangent_impl(*flat, spec: _TangentSpec):
  """The tangent of ``(carry, hs)``: ``jax.jvp`` of the pure-JAX path (what forward mode runs)."""
  (params, carry, xs, mask), _, tangents = _split(flat, spec)
  run = lambda p, c, x: spec.fallback(p, c, x, mask, spec.options)
  return jax.tree.leaves(jax.jvp(run, (params, carry, xs), tangents)[1])


def _tangent_jvp(primals, tangents, *, spec: _TangentSpec):
  """Second order: ``jax.jvp`` of the pure-JAX :func:`_tangent_impl` (which does not read the residuals)."""
  tangents = [ad.instantiate_zeros(t) if type(t) is ad.Zero else t for t in tangents]
  return jax.jvp(functools.partial(_tangent_impl, spec=spec), list(primals), tangents)


def _tangent_abstract_eval(*avals, spec: _TangentSpec):
  del avals
  return [ShapedArray(shape, dtype) for shape, dtype in spec.shapes]


def _native_vjp_fn(spec: _TangentSpec, need_dx: bool = True):
  """``vjp(primals, residuals, cts) -> (d_params, d_carry, d_xs)``: the native backward loop at the forward's
  residuals; a ``jax.custom_jvp`` whose rule is ``jax.jvp`` of the pure-JAX path's vjp (higher orders). ``need_dx``:
  see :func:`_backward`."""

  def pure(primals, cts):
    params, carry, xs, mask = primals
    _, vjp = jax.vjp(lambda p, c, x: spec.fallback(p, c, x, mask, spec.options), params, carry, xs)
    return vjp(cts)

  @jax.custom_jvp
  def vjp(primals, residuals, cts):
    return _backward(spec.kind, spec.relu, primals, residuals, cts, need_dx)

  @vjp.defjvp
  def vjp_jvp(primals, tangents):
    (p, residuals, cts), (dp, _, dcts) = primals, tangents  # the residuals are functions of the primals
    # The primal is the native loop's, as `vjp` computes it: under vmap the rule's outputs then have the batch axes
    # of `vjp`'s own (JAX gives the tangents the primals' axes). A jaxpr that stages `vjp` (a nested jit, batched)
    # takes its output axes from `vjp` and later runs this rule; with the pure-JAX path's primal, whose batch axis
    # can differ (the scan's stacked d_xs), jax.jvp of jax.jacrev of a jitted simple RNN got d_xs [T <- batch].
    return _backward(spec.kind, spec.relu, p, residuals, cts, need_dx), jax.jvp(pure, (p, cts), (dp, dcts))[1]

  return vjp


def _tangent_transpose(cts, *flat, spec: _TangentSpec):
  """The tangent's transpose: the native backward loop (``jax.grad`` of the default runs it), without the inputs'
  cotangent where the inputs' tangent is not linear (not differentiated: JAX gives it as zeros)."""
  n = spec.primals.num_leaves
  primals, residuals, (_, _, d_xs) = _split(flat, spec)  # the tangents are the linear (undefined) operands
  need_dx = ad.is_undefined_primal(d_xs)
  cts = [ad.instantiate_zeros(ct) if type(ct) is ad.Zero else ct for ct in cts]
  vjp = _native_vjp_fn(spec, need_dx)
  grads = jax.tree.leaves(vjp(primals, residuals, jax.tree.unflatten(spec.outputs, cts)))
  return [None] * (n + 3) + [g if ad.is_undefined_primal(a) else None for a, g in zip(flat[n + 3:], grads)]


def _tangent_batch(args, dims, *, spec: _TangentSpec):
  """``vmap``: one call per example (``lax.map``), as the native loop's own ``vmap_method="sequential"``."""
  mapped = [i for i, d in enumerate(dims) if d is not None]

  def one(leaves):
    full = list(args)
    for i, leaf in zip(mapped, leaves):
      full[i] = leaf
    return _tangent_p.bind(*full, spec=spec)

  outs = jax.lax.map(one, [jnp.moveaxis(args[i], dims[i], 0) for i in mapped])
  return outs, [0] * len(outs)


_tangent_p = jax.extend.core.Primitive("jaxrnn_native_tangent")
_tangent_p.multiple_results = True
_tangent_p.def_impl(_tangent_impl)
_tangent_p.def_abstract_eval(_tangent_abstract_eval)
mlir.register_lowering(_tangent_p, mlir.lower_fun(_tangent_impl, multiple_results=True))
ad.primitive_transposes[_tangent_p] = _tangent_transpose
ad.primitive_jvps[_tangent_p] = _tangent_jvp
batching.primitive_batchers[_tangent_p] = _tangent_batch


def native_derivative(kind: str, relu: bool, input_transform: Callable, fallback: Callable) -> Callable:
  """``run(params, carry, xs, mask, options)``: the native forward loop, differentiated natively in reverse mode and
  as ``fallback`` in forward mode.

  A ``jax.custom_jvp`` whose rule runs the native forward loop keeping the backward's residuals, and gives the
  tangent as one primitive, linear in the tangents: evaluated (``jax.jvp``), it is ``jax.jvp`` of the pure-JAX
  ``fallback``; transposed (``jax.grad``, ``jax.vjp``), it is the native backward loop. So the default trains at
  the all-native ``custom_vjp``'s speed and keeps forward mode and higher orders (the transpose is itself a
  ``jax.custom_jvp`` whose rule is the pure-JAX path's)."""
  @functools.partial(jax.custom_jvp, nondiff_argnums=(4,))
  def run(params, carry, xs, mask, options):
    return _run(kind, relu, input_transform, INFER, params, carry, xs, mask, options)[0]

  @functools.partial(jax.custom_jvp, nondiff_argnums=(4,))
  def with_residuals(params, carry, xs, mask, options):
    """``((carry, hs), residuals)``: the native forward loop keeping what its backward reads."""
    return _run(kind, relu, input_transform, BACKWARD_RESIDUALS, params, carry, xs, mask, options)

  def tangent(options, primals, tangents):
    """``(outputs, residuals), d_outputs``: the primal through ``with_residuals`` (differentiable again) and the
    tangent as :data:`_tangent_p`."""
    out, residuals = with_residuals(*primals, options)
    leaves, primals_def = jax.tree.flatten(primals)
    out_leaves, out_def = jax.tree.flatten(out)
    spec = _TangentSpec(kind, bool(relu), fallback, options, primals_def, out_def,
                        tuple((l.shape, l.dtype) for l in out_leaves))
    d_out = _tangent_p.bind(*leaves, *residuals, *jax.tree.leaves(tangents[:3]), spec=spec)
    return (out, residuals), jax.tree.unflatten(out_def, d_out)

  def with_residuals_jvp(options, primals, tangents):
    # the residuals' tangents are zeros: only _tangent_p reads them (its value and derivative do not depend on them)
    (out, residuals), d_out = tangent(options, primals, tangents)
    return (out, residuals), (d_out, jax.tree.map(jnp.zeros_like, residuals))

  def run_jvp(options, primals, tangents):
    (out, _), d_out = tangent(options, primals, tangents)
    return out, d_out

  with_residuals.defjvp(with_residuals_jvp)
  run.defjvp(run_jvp)
  return run


def step_macs(kind: str, params: Any, rows: int, features: int) -> int:
  """The multiply-adds of one step's products: ``rows * (F + P) * G H`` (``P``: the carried ``h``'s width, ``H``
  but for the LSTMP, whose projection adds ``rows * H * P``)."""
  recurrent, gates_width = params.w_h.shape
  macs = rows * (features + recurrent) * gates_width
  return macs + (rows * math.prod(params.w_r.shape) if kind == "lstmp" else 0)


def auto_refuses(kind: str, rows: int, macs: int, bfloat16: bool = False) -> Optional[str]:
  """Why ``native=None`` keeps the pure-JAX path for a call of ``rows`` examples per step and ``macs`` multiply-adds
  per step (:func:`step_macs`; ``None``: it runs the native loop): the measured rule :data:`AUTO` (see this
  module's comment), at every size when a param, the carry or the inputs are stored in ``bfloat16`` (see
  :data:`HALF`)."""
  rule = AUTO[kind]
  if rows < rule.min_rows:
    return f"{rows} examples (native=None runs the native {kind} loop from {rule.min_rows})"
  if macs > rule.max_step_macs and not bfloat16:
    return (f"{macs} multiply-adds per step (native=None runs the native {kind} loop up to "
            f"{rule.max_step_macs})")
  return None


def with_native(kind: Optional[str], relu: bool, input_transform: Callable, fallback: Callable) -> Callable:
  """A :class:`jaxrnn.types.SequenceFn` that runs the native loop when the call fits, else ``fallback``.

  Args:
    kind: ``"lstm"``, ``"gru"`` (``reset_after=True``), ``"gru_reset_before"``, ``"simple_rnn"`` or ``"lstmp"``;
      ``None``: this cell never runs natively (custom activations, a float64 compute dtype).
    relu: for ``simple_rnn``: ReLU (``True``) or tanh.
    input_transform: the cell's ``input_transform(params, xs)``: ``x W_i + b`` (checks params and inputs).
    fallback: the pure-JAX ``run(params, carry, xs, mask, options)`` of the same function.

  ``native=None`` runs :func:`native_derivative` where :func:`auto_refuses` allows, ``native=True`` the all-native
  ``custom_vjp`` (no forward mode), ``native=False`` ``fallback``.
  """
  default = None if kind is None else native_derivative(kind, relu, input_transform, fallback)
  native_true = None if kind is None else all_native(kind, relu, input_transform)

  def run(params, carry, xs, mask, options):
    why = None if options.native is False else fits(kind, params, carry, xs, options)
    stored = {l.dtype for l in jax.tree.leaves((params, carry, xs))}
    if why is None and options.native is None:
      assert kind is not None  # fits() gives a reason for kind=None
      rows = math.prod(xs.shape[1:-1])
      why = auto_refuses(kind, rows, step_macs(kind, params, rows, xs.shape[-1]), jnp.dtype(jnp.bfloat16) in stored)
    if options.native is False or why is not None:
      if options.native:
        raise ValueError(f"RunOptions(native=True) but the native CPU path cannot run this call: {why}")
      return fallback(params, carry, xs, mask, options._replace(native=None))
    assert kind is not None and default is not None and native_true is not None  # fits() refuses kind=None
    jax.eval_shape(input_transform, params, xs)  # checks params and inputs; computes nothing
    form = default if options.native is None else native_true
    if stored & set(HALF):
      return in_float32(form, fallback, params, carry, xs, mask, options)
    return form(params, carry, xs, mask, options)

  return run


def in_float32(form: Callable, fallback: Callable, params, carry, xs, mask, options):
  """Half-precision storage (:data:`HALF`): the native ``form`` on params, carry and inputs upcast to float32, its
  carry and outputs rounded to the dtypes the pure-JAX ``fallback`` returns for these arguments.

  The loop keeps its state in float32 from step to step, where the pure-JAX path rounds every step's carry to the
  storage dtype: the two agree to the storage dtype's rounding, and the native results are the float32 path's
  rounded once (``tests/test_native.py`` holds them so). Gradients flow through the casts (a bfloat16 param gets
  its float32 gradient rounded to bfloat16); the backward's residuals are float32."""
  pure = lambda p, c, x, m: fallback(p, c, x, m, options._replace(native=None))
  want = jax.eval_shape(pure, params, carry, xs, mask)  # traces only
  up = lambda tree: jax.tree.map(lambda a: a.astype(jnp.float32), tree)
  out = form(up(params), up(carry), up(xs), mask, options)
  return jax.tree.map(lambda o, w: o.astype(w.dtype), out, want)


def step_scan(scanned: Any) -> Callable:
  """The pure-JAX ``run(params, carry, xs, mask, options)`` of a cell whose sequence path is a native loop without a
  fused scan (the simple RNN, ``gru(reset_after=False)``, ``lstmp``): :func:`jaxrnn.unroll` of ``scanned`` (the
  cell without that path) with ``mode="step"``, the mask as lengths; it honours every run option."""
  def run(params, carry, xs, mask, options):
    lengths = None if mask is None else jnp.sum(mask.astype(jnp.int32), axis=0)
    return unroll(scanned, params, carry, xs, seq_lengths=lengths, time_major=True, mode="step", options=options)

  return run


def fused_or_native(kind: Optional[str], input_transform: Callable, pointwise: Callable,
                    pointwise_fields: Tuple[str, ...], dtype: Optional[Any], precision: Any) -> Callable:
  """The sequence function of a fused cell (LSTM, GRU): the pure-JAX fused scan
  (:func:`jaxrnn.cells._fused_scan.fused_sequence`) or the native loop (:func:`with_native`)."""
  fused = _fused_scan.fused_sequence(input_transform, pointwise, pointwise_fields, dtype, precision)
  return with_native(kind, False, input_transform, fused)
