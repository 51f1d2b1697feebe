"""The default native path (``native=None``: the native loops, with forward-mode AD) against the pure-JAX path and
the all-native ``custom_vjp`` (``native=True``), for the LSTM, GRU (both reset forms), simple RNN and LSTMP
(P = H / 2) at the sizes of ``rnn_layers.py``.

The measurements behind ``jaxrnn.cells._native_scan.AUTO`` (the rule by which ``native=None`` takes the native
loop). To time the default's form where the rule would keep the pure-JAX path (above 2^28 multiply-adds per step),
this script widens the rule to every size for its own process. Outputs are checked first against the pure-JAX
path's in float32, within 1e-4 of the largest magnitude (``--dtype bfloat16`` or ``float16``: params and inputs
stored so, checked against the float32 path at the same values; the native loop computes in float32, within 2e-2,
the pure-JAX path rounds every step, within 1e-1; ``--compute-dtype bfloat16`` or ``float16``: cells built with that
compute ``dtype``, checked against the float32 cell's pure-JAX path, the native loop within 1e-4 in float32 storage,
the pure-JAX path in that compute dtype within 1e-1); calls are interleaved, in a fresh order each round. One thread,
CPU time (what the rule's comment quotes):

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" JAXRNN_NATIVE_THREADS=1 \\
      PYTHONPATH=. python benchmarks/native_default.py --clock cpu --stat min --repeats 9 --workload W1 --mode train
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp

import jaxrnn
from jaxrnn.cells import _native_scan

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # `python benchmarks/...` too
from benchmarks._timing import interleaved_ms  # noqa: E402

# (batch, time, input, hidden): W1-W4 of rnn_layers.py, and M1, M2 between W1 and W4 in multiply-adds per step
WORKLOADS = {"W1": (32, 128, 128, 256), "W2": (64, 512, 128, 128), "W3": (1, 1024, 64, 128),
             "W4": (128, 256, 512, 512), "M1": (64, 128, 256, 256), "M2": (128, 128, 256, 256)}
VARIANTS = {"pure-JAX": False, "default": None, "native=True": True}
CELLS = {"lstm": jaxrnn.lstm, "gru": jaxrnn.gru, "simple_rnn": jaxrnn.simple_rnn,
         "gru_reset_before": functools.partial(jaxrnn.gru, reset_after=False),
         "lstmp": lambda hidden, **kw: jaxrnn.lstmp(hidden, hidden // 2, **kw)}  # P = H / 2


def timed_function(cell, mode: str, native):
  """The jitted function a benchmark times: ``unroll``'s outputs (``mode="infer"``) or the gradient of their sum of
  squares with respect to params and inputs (``"train"``), under ``RunOptions(native=native)``."""
  def forward(p, x):
    return jaxrnn.unroll(cell, p, None, x, options=jaxrnn.RunOptions(native=native))[1]
  if mode == "train":
    return jax.jit(jax.grad(lambda p, x: jnp.sum(forward(p, x).astype(jnp.float32) ** 2), argnums=(0, 1)))
  return jax.jit(forward)


def relative_error(out, want) -> float:
  """The largest difference between the leaves of ``out`` and ``want`` (as float32), over ``want``'s largest
  magnitude (at least 1)."""
  return max(float(jnp.abs(a.astype(jnp.float32) - b.astype(jnp.float32)).max())
             / max(1.0, float(jnp.abs(b.astype(jnp.float32)).max()))
             for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(want)))


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--cell", choices=sorted(CELLS), action="append")
  parser.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
  parser.add_argument("--size", action="append", metavar="B,T,F,H", help="a size of your own (as many as you like)")
  parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32",
                      help="of params and inputs")
  parser.add_argument("--compute-dtype", choices=["bfloat16", "float16"], default=None,
                      help="the cells' compute dtype (default: none, products in the params' dtype)")
  parser.add_argument("--mode", choices=["infer", "train"], action="append")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
  parser.add_argument("--stat", choices=["median", "min"], default="median")
  args = parser.parse_args()
  clock = time.perf_counter if args.clock == "wall" else time.process_time
  stat = statistics.median if args.stat == "median" else min
  # the default's form at every size (this process only): see the module docstring
  _native_scan.AUTO = {k: r._replace(min_rows=1, max_step_macs=1 << 62) for k, r in _native_scan.AUTO.items()}
  print(f"{jaxrnn.native.status_line()}; clock={args.clock}, {args.stat} of {args.repeats}, {args.dtype}"
        + (f", compute dtype {args.compute_dtype}" if args.compute_dtype else ""))
  sizes = {w: WORKLOADS[w] for w in args.workload or ([] if args.size else WORKLOADS)}
  sizes.update({s: tuple(int(n) for n in s.split(",")) for s in args.size or []})
  dtype = jnp.dtype(args.dtype)
  half = args.dtype != "float32"  # stored so, computed in float32 by the native loop, rounded every step by pure-JAX
  tol = {"pure-JAX": 1e-1, "default": 2e-2, "native=True": 2e-2} if half else dict.fromkeys(VARIANTS, 1e-4)
  if args.compute_dtype:
    tol["pure-JAX"] = 1e-1  # products in the compute dtype; the native loop computes in float32
  compute = {"dtype": jnp.dtype(args.compute_dtype)} if args.compute_dtype else {}
  for cell_name in args.cell or ["lstm", "gru"]:
    for workload, (B, T, F, H) in sizes.items():
      cell, cell32 = CELLS[cell_name](H, **compute), CELLS[cell_name](H)
      params = jax.tree.map(lambda a: a.astype(dtype), cell.init(jax.random.key(0), F))
      xs = jax.random.normal(jax.random.key(1), (B, T, F), dtype)
      for mode in args.mode or ["infer", "train"]:
        fns = {name: timed_function(cell, mode, native) for name, native in VARIANTS.items()}
        outs = {n: jax.block_until_ready(f(params, xs)) for n, f in fns.items()}
        up = lambda tree: jax.tree.map(lambda a: a.astype(jnp.float32), tree)
        want = timed_function(cell32, mode, False)(up(params), up(xs))
        errors = {n: relative_error(out, want) for n, out in outs.items()}
        for n, err in errors.items():
          assert err < tol[n], f"{n} disagrees with the pure-JAX path in float32: {err}"
        ms = interleaved_ms(fns, (params, xs), args.repeats, stat, clock)
        print(f"{cell_name} {workload} {mode} B={B} T={T} F={F} H={H}: "
              + ", ".join(f"{n} {m:.1f} ms ({m / ms['pure-JAX']:.2f})" for n, m in ms.items())
              + ("; largest error / float32's largest magnitude: "
                 + ", ".join(f"{n} {e:.2g}" for n, e in errors.items()) if half or compute else ""), flush=True)


if __name__ == "__main__":
  main()
