"""mLSTM training memory: compiled temp memory of ``jit(value_and_grad)`` through :func:`jaxrnn.unroll` with the
chunkwise parallel form (``mlstm(..., chunk_size=L)``) against the one-chunk (quadratic, ``chunk_size=None``) form,
and the recurrent scan of ``step``; optionally one measured step at the largest ``T``.

Memory is read from ``compiled.memory_analysis()`` (nothing runs unless ``--run``), float32, B=1, F=H.

Run: PYTHONPATH=. python benchmarks/mlstm_chunkwise_memory.py [--T 65536] [--H 64] [--heads 1] [--chunk 64] [--run]
"""

import argparse
import time

import jax
import jax.numpy as jnp

import jaxrnn


def compiled(H, heads, chunk, T, mode="auto", B=1):
  cell = jaxrnn.mlstm(H, num_heads=heads, chunk_size=chunk)
  params = cell.init(jax.random.key(0), H)
  loss = lambda p, x: jnp.sum(jaxrnn.unroll(cell, p, None, x, mode=mode)[1] ** 2)
  fn = jax.jit(jax.value_and_grad(loss))
  t0 = time.perf_counter()
  out = fn.lower(params, jax.ShapeDtypeStruct((B, T, H), jnp.float32)).compile()
  return out, params, time.perf_counter() - t0


def temp_mib(*args, **kw):
  out, _, seconds = compiled(*args, **kw)
  return out.memory_analysis().temp_size_in_bytes / 2**20, seconds


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--T", type=int, default=65_536)
  parser.add_argument("--H", type=int, default=64)
  parser.add_argument("--heads", type=int, default=1)
  parser.add_argument("--chunk", type=int, default=64)
  parser.add_argument("--quadratic-max-T", type=int, default=4096, help="the one-chunk form is O(T^2) memory")
  parser.add_argument("--run", action="store_true", help="also run one value_and_grad step at --T")
  args = parser.parse_args()
  print(f"backend={jax.default_backend()}, mLSTM H={args.H} heads={args.heads}, B=1, float32, "
        f"temp MiB of jit(value_and_grad) (compile seconds)")
  print(f"| T | chunkwise L={args.chunk} | one chunk (quadratic) | scan of step |")
  print("|---|---|---|---|")
  Ts = sorted({t for t in (1024, 4096, 16_384, args.T) if t <= args.T})
  for T in Ts:
    chunked = temp_mib(args.H, args.heads, args.chunk, T)
    quad = temp_mib(args.H, args.heads, None, T) if T <= args.quadratic_max_T else None
    step = temp_mib(args.H, args.heads, args.chunk, T, mode="step")
    cell = lambda r: "—" if r is None else f"{r[0]:.1f} ({r[1]:.1f} s)"
    print(f"| {T} | {cell(chunked)} | {cell(quad)} | {cell(step)} |", flush=True)
  if args.run:
    fn, params, _ = compiled(args.H, args.heads, args.chunk, args.T)
    xs = jax.random.normal(jax.random.key(1), (1, args.T, args.H))
    jax.block_until_ready(fn(params, xs))
    t0 = time.perf_counter()
    loss, grads = jax.block_until_ready(fn(params, xs))
    finite = all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    print(f"T={args.T}: one value_and_grad step {time.perf_counter() - t0:.2f} s, gradients finite: {finite}")
