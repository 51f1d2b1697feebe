"""Where the LSTM's backward pass spends its time on XLA:CPU: a per-op budget (issue 5).

Times each piece of the training step alone (a 128-step loop doing only that op, or one large product), and the
whole step by two paths: ``mode="step"`` (JAX differentiates the scan of ``step``) and ``mode="sequence"`` (the
LSTM's fused path, ``jaxrnn/cells/_fused_scan.py``). Run by hand, one thread, CPU time:

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false" taskset -c 1 python benchmarks/backward_budget.py

What it showed (B=32 T=128 F=128 H=256, float32): the differentiated scan's backward loop does, per step,
``dz W_h^T``, ``dz W_i^T``, and accumulates ``dW_h += h^T dz`` and ``dW_i += x^T dz`` (read-modify-write of a
[384, 1024] accumulator): ~90-105 ms in the loop, ~53 of it the accumulations. The fused path's backward loop does
``dz W_h^T`` (~29 ms with the gate math), then three large products (~48 ms); the layer's forward + backward went
191 -> 157 ms in one run. A
contraction over the two axes ``(T, B)`` (instead of rows ``[T * B, n]``) made XLA copy ``dz`` to a transposed
layout and run both weight products on transposed operands: ~75 ms instead of ~33 ms.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp

import jaxrnn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # `python benchmarks/...` too
from benchmarks._timing import median_ms  # noqa: E402


def timed(fn, *args, repeats=7):
  """Median milliseconds of CPU time of ``jax.jit(fn)(*args)`` (compiled and warmed up first)."""
  return median_ms(jax.jit(fn), args, repeats, clock=time.process_time)


def loop(op):
  """A 128-step ``lax.scan`` applying ``op`` to each time slice of its inputs."""
  return lambda *xs: jax.lax.scan(lambda c, a: (c, op(*a)), 0.0, xs)[1]


def accumulate(op, shape):
  return lambda *xs: jax.lax.scan(lambda c, a: (c + op(*a), None), jnp.zeros(shape), xs)[0]


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--steps", type=int, default=128)
  parser.add_argument("--features", type=int, default=128)
  parser.add_argument("--hidden", type=int, default=256)
  args = parser.parse_args()
  B, T, F, H = args.batch, args.steps, args.features, args.hidden
  N = 4 * H
  k = jax.random.split(jax.random.key(0), 6)
  w_h, w_i = 0.05 * jax.random.normal(k[0], (H, N)), 0.05 * jax.random.normal(k[1], (F, N))
  hs, xs = jax.random.normal(k[2], (T, B, H)), jax.random.normal(k[3], (T, B, F))
  dz = jax.random.normal(k[4], (T, B, N))
  rows = lambda a: a.reshape(-1, a.shape[-1])
  pieces = {
      f"loop: h @ W_h                [{B}x{H}]@[{H}x{N}]": (loop(lambda h: h @ w_h), hs),
      f"loop: x @ W_i                [{B}x{F}]@[{F}x{N}]": (loop(lambda x: x @ w_i), xs),
      "loop: dz @ W_h.T (transposed operand)": (loop(lambda d: d @ w_h.T), dz),
      "loop: dz @ W_hT (kernel transposed once)": (lambda d, w: loop(lambda a: a @ w)(d), dz, w_h.T.copy()),
      "loop: dz @ W_i.T": (loop(lambda d: d @ w_i.T), dz),
      "loop: dW_h += h.T @ dz": (accumulate(lambda h, d: h.T @ d, (H, N)), hs, dz),
      "loop: dW_i += x.T @ dz": (accumulate(lambda x, d: x.T @ d, (F, N)), xs, dz),
      f"GEMM: dW_h = H.T @ dZ rows   [{H}x{T * B}]@[{T * B}x{N}]": (lambda h, d: rows(h).T @ rows(d), hs, dz),
      "GEMM: dW_h over axes (T, B), transposed": (
          lambda h, d: jax.lax.dot_general(d, h, (((0, 1), (0, 1)), ((), ()))).T, hs, dz),
      "GEMM: dW_i = X.T @ dZ rows": (lambda x, d: rows(x).T @ rows(d), xs, dz),
      "GEMM: dX = dZ @ W_i.T rows": (lambda d: rows(d) @ w_i.T, dz),
  }
  print(f"jax {jax.__version__}, B={B} T={T} F={F} H={H}, float32, median CPU ms\n")
  print("| piece | ms |\n|---|---|")
  for name, (fn, *fn_args) in pieces.items():
    print(f"| {name} | {timed(fn, *fn_args):.1f} |")

  cell = jaxrnn.lstm(H)
  params = cell.init(jax.random.key(1), F)
  x = jax.random.normal(k[5], (B, T, F))
  carry = cell.initial_carry(params, (B,))
  for mode in ("step", "sequence"):
    fwd = lambda p, x, mode=mode: jaxrnn.unroll(cell, p, carry, x, mode=mode)[1]
    grad = jax.grad(lambda p, x, mode=mode: jnp.sum(fwd(p, x, mode) ** 2), argnums=(0, 1))
    print(f"| LSTM layer mode={mode!r}: forward | {timed(fwd, params, x):.1f} |")
    print(f"| LSTM layer mode={mode!r}: forward + backward | {timed(grad, params, x):.1f} |")


if __name__ == "__main__":
  main()
