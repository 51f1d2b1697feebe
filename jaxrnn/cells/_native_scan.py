"""The native CPU form of a dense cell's sequence path: the time loop in C++ (``jaxrnn/native/rnn.cc``), with a
``jax.custom_vjp`` whose backward loop is native too.

Split of the work: the native forward loop runs, per step, the input projection ``x_t W_i + b`` beside
``h_{t-1} W_h`` (as the pure-JAX path does on CPU, where ``hoist=None`` projects inside the loop) and the gate
arithmetic; the native backward loop runs the gate derivatives and ``dz_t W_h^T``, then the recurrent kernel's
gradient ``sum_t h_{t-1}^T dz_t`` as one large product (OpenBLAS: XLA:CPU is ~2x slower on a transposed operand).
The gradients of ``w_i``, ``b`` and the inputs are JAX's vjp of the cell's own ``input_transform`` at the native
``dz``. The gate arithmetic in C++ restates the cell's ``pointwise`` function (no C++ can call it); the parity tests
(``tests/test_native.py``) hold the two equal. Forward-mode AD does not go through a ``custom_vjp``: ``jax.jvp``
raises JAX's error there, and ``RunOptions(native=False)`` runs the pure-JAX path.

:func:`with_native` wraps a pure-JAX sequence function: the native loop runs when the call fits (:func:`fits`),
the pure-JAX one otherwise, and ``RunOptions(native=...)`` chooses (``None``: native when it fits; ``False``: never;
``True``: native, or a ``ValueError`` saying why it does not fit).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import native
from jaxrnn.types import RunOptions

# native=None takes the native loop wherever the call fits: with the step's products as this library's packed
# kernel (jaxrnn/native/rnn.cc) it was measured faster than the pure-JAX path (or equal, GRU at B=1) at every
# benchmark size, one thread, CPU time (benchmarks/rnn_layers.py, loaded 2-core machine; native / pure-JAX):
# LSTM B=32 T=128 I=128 H=256 train 0.80, B=64 T=512 I=128 H=128 infer 0.87, B=1 T=1024 I=64 H=128 0.92,
# B=128 T=256 I=512 H=512 train 0.93; GRU 0.79, 0.90, 1.02 (B=1). The earlier loop over OpenBLAS's sgemm was
# 1.4-1.8x slower at B=32/64 and ran only below 4 examples per step.
# native=None takes the native loop only for batches of fewer examples than this. With the packed kernel the loop
# needs 15-20% less CPU than the pure-JAX path at B=32/64 (one thread), but no wall-clock gain on all cores has
# been measured there (one loaded run: within noise), and a custom_vjp has no forward mode: above this size
# native=None keeps the pure-JAX path, whose jax.jvp / Hessian-vector products work. native=True runs it for any
# batch. B=1 T=1024 H=128: LSTM 0.43x, GRU 0.58x the pure-JAX path's wall time (benchmarks/rnn_layers.py).
AUTO_MAX_ROWS = 4
KINDS = {"lstm": 0, "gru": 1, "simple_rnn": 2}
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}


def _call(target: str, results: list, *args: Any, **attrs: Any):
  if not native.available():  # loads the library and registers its targets
    raise RuntimeError(f"the native CPU path is not available: {native.reason()}")
  return jax.ffi.ffi_call(target, results, vmap_method="sequential")(*args, **{k: np.int64(v) for k, v in
                                                                                attrs.items()})


def _weights(kind: str, params: Any):
  """``(w_i, b, w_h, b_hn)`` as the native loop takes them: a missing bias as an empty array, and for the GRU a
  missing ``b_hn`` as zeros."""
  H = params.w_h.shape[0]
  b = params.b if params.b is not None else jnp.zeros((0,), jnp.float32)
  if kind == "gru":
    b_hn = params.b_hn if params.b_hn is not None else jnp.zeros((H,), jnp.float32)
  else:
    b_hn = jnp.zeros((0,), jnp.float32)
  return params.w_i, b, params.w_h, b_hn


def _forward(kind: str, relu: bool, train: bool, params, x, h0, c0, mask):
  T, B, _ = x.shape
  w_i, b, w_h, b_hn = _weights(kind, params)
  H = w_h.shape[0]
  f32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
  lstm = kind == "lstm"
  steps = T if train else 0
  results = [f32(T, B, H), f32(B, H), f32(B, H if lstm else 0), f32(steps, B, H), f32(steps if lstm else 0, B, H),
             f32(steps if kind != "simple_rnn" else 0, B, 4 * H)]
  return _call(native.FORWARD, results, x, w_i, b, w_h, b_hn, h0, c0, mask, kind=KINDS[kind], relu=relu,
               train=train)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _loop(kind: str, relu: bool, input_transform: Callable, params, x, h0, c0, mask):
  """``(hs, h_last, c_last)`` of the recurrence over ``x: [T, B, F]`` (flat batch), native forward.

  ``input_transform`` is the cell's (``x W_i + b``): the native loop computes it per step, and the backward pass
  differentiates it with JAX (the input-side gradients from the native loop's ``dz``)."""
  hs, h_last, c_last, *_ = _forward(kind, relu, False, params, x, h0, c0, mask)
  return hs, h_last, c_last


def _loop_fwd(kind, relu, input_transform, params, x, h0, c0, mask):
  hs, h_last, c_last, h_all, c_all, gates = _forward(kind, relu, True, params, x, h0, c0, mask)
  return (hs, h_last, c_last), (params, x, h0, c0, h_all, c_all, gates, mask)


def _loop_bwd(kind, relu, input_transform, residuals, cotangents):
  params, x, h0, c0, h_all, c_all, gates, mask = residuals
  dhs, dh_last, dc_last = cotangents
  T, B, H = h_all.shape
  _, _, w_h, _ = _weights(kind, params)
  GH = w_h.shape[1]
  f32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
  gru = kind == "gru"
  lstm = kind == "lstm"
  results = [f32(T, B, GH), f32(T if gru else 0, B, GH), f32(B, H), f32(B, H if lstm else 0), f32(H, GH)]
  dz, dzr, dh0, dc0, d_w_h = _call(native.BACKWARD, results, w_h, h0, c0, h_all, c_all, gates, mask, dhs,
                                   dh_last, dc_last, kind=KINDS[kind], relu=relu)
  # dz is the cotangent of u = input_transform(params, x): JAX's vjp gives those of w_i, b and x (w_h: none).
  _, transform_vjp = jax.vjp(input_transform, params, x)
  d_params, dx = transform_vjp(dz)
  d_params = d_params._replace(w_h=d_w_h)
  if gru and params.b_hn is not None:
    d_params = d_params._replace(b_hn=jnp.sum(dzr[..., 2 * H:], axis=(0, 1)))
  return d_params, dx, dh0, dc0, None


_loop.defvjp(_loop_fwd, _loop_bwd)


def fits(kind: Optional[str], params: Any, carry: Any, xs: Any, options: RunOptions) -> Optional[str]:
  """Why the native loop cannot run this call (``None``: it can).

  It runs on the CPU backend, for a cell with the standard activations and no compute ``dtype`` other than
  float32 (``kind`` is ``None`` otherwise), float32 params, carry and inputs, at least one step and one example,
  and run options it honours: ``hoist`` unset or ``False`` (the native loop computes the input projection per
  step), no ``unroll`` and no ``remat`` (those are options of a scan; the pure-JAX path runs them).
  """
  if kind is None:
    return "the cell has a custom activation or a compute dtype other than float32"
  if not native.available():
    return native.reason()
  if jax.default_backend() != "cpu":
    return f"the backend is {jax.default_backend()}, not cpu"
  if options.remat is not None or options.unroll != 1 or options.hoist is True:
    return (f"run options {options} (a native loop has no scan to unroll or remat, and computes the input "
            f"projection inside the loop: hoist=True is the pure-JAX path's)")
  if not isinstance(xs, (jax.Array, np.ndarray)):
    return "xs is not one array"
  leaves = [l for l in jax.tree.leaves((params, carry, xs)) if l is not None]
  bad = sorted({str(l.dtype) for l in leaves if l.dtype != jnp.float32})
  if bad:
    return f"dtypes {bad}; the native loop runs float32 only"
  if xs.shape[0] == 0 or math.prod(xs.shape[1:-1]) == 0:
    return f"an empty sequence or batch (xs: {xs.shape})"
  return None


def standard(activation: Any, gate_activation: Any, dtype: Any, activations=("tanh",)) -> bool:
  """Whether a cell built with these factory arguments computes what the native loop computes: activations named
  (not callables) as the loop has them, and no compute ``dtype`` other than float32."""
  named = lambda a, allowed: isinstance(a, str) and a in allowed
  return (named(activation, activations) and (gate_activation is None or named(gate_activation, ("sigmoid",)))
          and (dtype is None or jnp.dtype(dtype) == jnp.float32))


def with_native(kind: Optional[str], relu: bool, input_transform: Callable, fallback: Callable) -> Callable:
  """A :class:`jaxrnn.types.SequenceFn` that runs the native loop when the call fits, else ``fallback``.

  Args:
    kind: ``"lstm"``, ``"gru"`` (``reset_after=True``) or ``"simple_rnn"``; ``None``: this cell never runs natively
      (custom activations, a low-precision compute dtype).
    relu: for ``simple_rnn``: ReLU (``True``) or tanh.
    input_transform: the cell's ``input_transform(params, xs)``: ``x W_i + b`` (checks params and inputs).
    fallback: the pure-JAX ``run(params, carry, xs, mask, options)`` of the same function.
  """

  def run(params, carry, xs, mask, options):
    why = None if options.native is False else fits(kind, params, carry, xs, options)
    if why is None and options.native is None and math.prod(xs.shape[1:-1]) >= AUTO_MAX_ROWS:
      why = f"{math.prod(xs.shape[1:-1])} examples (native=None runs the native loop below {AUTO_MAX_ROWS})"
    if options.native is False or why is not None:
      if options.native:
        raise ValueError(f"RunOptions(native=True) but the native CPU path cannot run this call: {why}")
      return fallback(params, carry, xs, mask, options._replace(native=None))
    assert kind is not None  # fits() gives a reason for kind=None
    T, batch = xs.shape[0], xs.shape[1:-1]
    n = math.prod(batch)
    GH = jax.eval_shape(input_transform, params, xs).shape[-1]  # checks params and inputs; computes nothing
    H = GH // GATES[kind]
    lstm = kind == "lstm"
    h0 = carry.h.reshape((n, H))
    c0 = carry.c.reshape((n, H)) if lstm else jnp.zeros((n, 0), jnp.float32)
    m = jnp.ones((T, n), jnp.int32) if mask is None else mask.reshape((T, n)).astype(jnp.int32)
    out = _loop(kind, bool(relu), input_transform, params, xs.reshape((T, n, xs.shape[-1])), h0, c0, m)
    hs, h_last, c_last = out  # pyright: ignore[reportGeneralTypeIssues]  # custom_vjp via partial: type lost
    fields = dict(h=h_last.reshape(batch + (H,)))
    if lstm:
      fields["c"] = c_last.reshape(batch + (H,))
    return carry._replace(**fields), hs.reshape((T,) + batch + (H,))

  return run
