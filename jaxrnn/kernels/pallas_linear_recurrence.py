"""A Pallas kernel for the elementwise linear recurrence ``h_t = a_t * h_{t-1} + b_t`` (real or complex).

The associative scan (:func:`jaxrnn.parallel_scan.linear_recurrence`) reads and writes all ``T`` steps
``O(log T)`` times; ``lax.scan`` launches one small loop iteration per step. This kernel is the third form: one
launch whose programs each own ``block`` features (``D = prod(*B, ...)`` of them in all) and run the ``T`` steps
in order, keeping ``h`` in registers, so it reads ``a`` and ``b`` once and writes ``h`` once (complex inputs are
split into real planes first, and a feature count that is not a multiple of the block is padded: one copy each).
The loads of a chunk of ``chunk`` steps do not depend on ``h``, so they are issued together (the chunk is unrolled
in the program).

On GPU it is compiled by Pallas' Triton backend; on CPU it runs in Pallas' interpret mode (slow: for tests). Its
gradient is the same recurrence backwards (``lam_t = g_t + a_{t+1} lam_{t+1}``, ``da_t = lam_t h_{t-1}``,
``db_t = lam_t``), run by the same kernel in reverse. It computes in float32 (float64 for float64 inputs) and
returns ``b``'s dtype.

It is an option (``kernel="pallas"`` in :class:`jaxrnn.RunOptions`), not a default: :mod:`jaxrnn.kernels.choice`
says where measurements made it one.
"""

from __future__ import annotations

import functools
import math
from typing import Optional, Tuple

import jax
import jax.numpy as jnp

Array = jax.Array

BLOCK = 128  # features per program (a power of two, as Triton's tensors are)
CHUNK = 8  # steps per unrolled chunk of the time loop (compiled; 1 in interpret mode, where unrolling buys nothing)


def misfit() -> Optional[str]:
  """``None`` if the kernel runs on this backend (GPU through Triton, CPU in interpret mode), else why not."""
  backend = jax.default_backend()
  if backend not in ("gpu", "cpu"):
    return f"the Pallas kernel is built for GPU (Triton) and CPU (interpret mode); the backend is {backend!r}"
  return None


def _step(a, b, h):
  """One step in the compute dtype; ``a, b, h`` are tuples ``(re,)`` or ``(re, im)``."""
  if len(h) == 1:
    return (a[0] * h[0] + b[0],)
  (ar, ai), (br, bi), (hr, hi) = a, b, h
  return (ar * hr - ai * hi + br, ar * hi + ai * hr + bi)


def _kernel(*refs, num_steps: int, block: int, chunk: int, parts: int, reverse: bool, compute):
  """Refs: ``a`` (``parts`` of them, ``[T, D]``), ``b`` (same), ``h0`` (``[D]`` each), then the outputs ``[T, D]``."""
  from jax.experimental import pallas as pl

  a_refs, b_refs = refs[:parts], refs[parts:2 * parts]
  h0_refs, out_refs = refs[2 * parts:3 * parts], refs[3 * parts:]
  cols = pl.ds(pl.program_id(0) * block, block)

  def one(t, h):
    tt = num_steps - 1 - t if reverse else t
    a = tuple(r[tt, cols].astype(compute) for r in a_refs)
    b = tuple(r[tt, cols].astype(compute) for r in b_refs)
    h = _step(a, b, h)
    for r, v in zip(out_refs, h):
      r[tt, cols] = v.astype(r.dtype)
    return h

  def chunk_body(c, h):
    for i in range(chunk):
      h = one(c * chunk + i, h)
    return h

  h = tuple(r[cols].astype(compute) for r in h0_refs)
  full = num_steps // chunk
  h = jax.lax.fori_loop(0, full, chunk_body, h)
  jax.lax.fori_loop(full * chunk, num_steps, one, h)


def _block_for(width: int, block: Optional[int]) -> int:
  if block is not None:
    if block < 1 or block & (block - 1):
      raise ValueError(f"block must be a positive power of two, got {block}")
    return block
  return min(BLOCK, 1 << max(0, math.ceil(math.log2(max(width, 1)))))


def _compute_dtype(dtype) -> jnp.dtype:
  real = jnp.finfo(dtype).dtype
  return jnp.dtype(jnp.float64) if real == jnp.float64 else jnp.dtype(jnp.float32)


def _call(a: Tuple[Array, ...], b: Tuple[Array, ...], h0: Tuple[Array, ...], reverse: bool, block: Optional[int],
          chunk: Optional[int], interpret: Optional[bool]) -> Tuple[Array, ...]:
  """Runs the kernel on real planes ``[T, D]`` (one per part: real, or real and imaginary)."""
  from jax.experimental import pallas as pl

  num_steps, width = b[0].shape
  block = _block_for(width, block)
  padded = -(-width // block) * block
  pad = lambda x: x if padded == width else jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, padded - width)])
  a, b, h0 = (tuple(pad(x) for x in xs) for xs in (a, b, h0))
  if interpret is None:
    interpret = jax.default_backend() == "cpu"
  if chunk is None:
    chunk = 1 if interpret else CHUNK
  if chunk < 1:
    raise ValueError(f"chunk must be a positive int, got {chunk}")
  params: dict = {}
  if not interpret:
    from jax.experimental.pallas import triton as plgpu
    params = dict(compiler_params=plgpu.CompilerParams(num_warps=max(1, min(4, block // 32)), num_stages=1))
  kernel = functools.partial(_kernel, num_steps=num_steps, block=block, chunk=max(1, min(chunk, num_steps)),
                             parts=len(b), reverse=reverse, compute=_compute_dtype(b[0].dtype))
  out = pl.pallas_call(kernel, out_shape=tuple(jax.ShapeDtypeStruct((num_steps, padded), x.dtype) for x in b),
                       grid=(padded // block,), interpret=interpret, name="linear_recurrence", **params)(*a, *b, *h0)
  return tuple(o[:, :width] for o in out)


def _planes(x: Array) -> Tuple[Array, ...]:
  return (jnp.real(x), jnp.imag(x)) if jnp.iscomplexobj(x) else (x,)


def _join(planes: Tuple[Array, ...], dtype) -> Array:
  return jax.lax.complex(*planes).astype(dtype) if len(planes) == 2 else planes[0]


def scan(a: Array, b: Array, h0: Array, *, reverse: bool = False, block: Optional[int] = None,
         chunk: Optional[int] = None, interpret: Optional[bool] = None) -> Array:
  """All states of ``h_t = a_t * h_{t-1} + b_t`` from ``h0``, by the Pallas kernel (no gradient rule: see
  :func:`linear_recurrence`).

  Args:
    a, b: ``[T, *D]``, same shape and dtype (real floating or complex).
    h0: ``[*D]``, the state before the first step (before the last one with ``reverse``).
    reverse: run from ``t = T - 1`` down to ``0``.
    block: features per program (a power of two; default up to 128).
    chunk: steps per unrolled chunk of the time loop (default :data:`CHUNK`, 1 in interpret mode).
    interpret: Pallas' interpret mode (``None``: on CPU only).

  Returns:
    ``hs: [T, *D]`` in ``b``'s dtype.
  """
  if a.shape != b.shape or a.dtype != b.dtype:
    raise ValueError(f"a and b must have the same shape and dtype, got {a.shape} {a.dtype} and {b.shape} {b.dtype}")
  if a.ndim < 1 or tuple(h0.shape) != tuple(a.shape[1:]):
    raise ValueError(f"h0 must have shape {tuple(a.shape[1:])} (a without its time axis), got {h0.shape}")
  num_steps = a.shape[0]
  if num_steps == 0 or math.prod(a.shape[1:]) == 0:
    return jnp.zeros_like(b)
  flat = lambda x: x.reshape((num_steps, -1))
  hs = _call(tuple(flat(p) for p in _planes(a)), tuple(flat(p) for p in _planes(b)),
             tuple(p.reshape(-1) for p in _planes(h0.astype(b.dtype))), reverse, block, chunk, interpret)
  return _join(hs, b.dtype).reshape(b.shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def _recurrence(a: Array, b: Array, h0: Array, block: Optional[int], chunk: Optional[int],
                interpret: Optional[bool]) -> Array:
  return scan(a, b, h0, block=block, chunk=chunk, interpret=interpret)


def _recurrence_fwd(a, b, h0, block, chunk, interpret):
  hs = scan(a, b, h0, block=block, chunk=chunk, interpret=interpret)
  return hs, (a, h0, hs)


def _recurrence_bwd(block, chunk, interpret, res, g):
  # lam_t = g_t + a_{t+1} lam_{t+1} (lam_{T-1} = g_{T-1}): the recurrence backwards with the decays shifted by one.
  # JAX transposes without conjugating, so the same holds for complex a and b.
  a, h0, hs = res
  a_next = jnp.concatenate([a[1:], jnp.zeros_like(a[:1])], axis=0)
  lam = scan(a_next, g.astype(hs.dtype), jnp.zeros_like(hs[0]), reverse=True, block=block, chunk=chunk,
             interpret=interpret)
  h_prev = jnp.concatenate([h0.astype(hs.dtype)[None], hs[:-1]], axis=0)
  return (lam * h_prev).astype(a.dtype), lam.astype(hs.dtype), (lam[0] * a[0]).astype(h0.dtype)


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def linear_recurrence(a: Array, b: Array, h0: Array, *, block: Optional[int] = None, chunk: Optional[int] = None,
                      interpret: Optional[bool] = None) -> Array:
  """``hs: [T, *D]``, all states of ``h_t = a_t * h_{t-1} + b_t``, differentiable (reverse mode) in ``a, b, h0``.

  The gradient runs the same kernel backwards. ``a``, ``b``: ``[T, *D]`` (real floating or complex, one dtype);
  ``h0``: ``[*D]``. ``block``, ``chunk``, ``interpret``: as :func:`scan`'s.

  >>> import jax.numpy as jnp
  >>> linear_recurrence(jnp.full((3, 1), 0.5), jnp.ones((3, 1)), jnp.array([4.0]))[:, 0].tolist()
  [3.0, 2.5, 2.25]
  """
  return _recurrence(a, b, h0, block, chunk, interpret)
