"""The parallel-in-time solver (``unroll(..., newton=ParallelNewton(...))``) vs the scan of ``step``.

Run by hand (not part of the tests):

    .venv/bin/python benchmarks/parallel_in_time.py --quick            # T = 1k, H = 16, 64; every Jacobian choice
    .venv/bin/python benchmarks/parallel_in_time.py                    # T = 1k, 16k, 100k; H = 16, 64, 256
    .venv/bin/python benchmarks/parallel_in_time.py --cells gru,para_gru --T 1000,16000 --H 64 --jacobians full

For every cell, ``T``, ``H`` and Jacobian choice it reports the iterations to converge (``NewtonInfo``), whether
it converged within the cap (else the run is finished by the scan of ``step``: "seq" in the table), and the median
milliseconds of the forward pass (``fwd``) and of forward + backward (``f+b``: the gradient of a loss w.r.t.
params and inputs), next to the scan of ``step`` (``mode="step"``), under ``jax.jit``. The ratio is ``step /
solver`` (> 1: the solver is faster). Outputs are checked to agree with the scan of ``step`` before timing.

Weights: ``--weights random`` (the cell's initialisers) or ``--weights scaled`` (every floating parameter x3,
saturating and closer to chaotic dynamics, where the iterations approach ``T``). ``full`` Jacobians cost
``O(T H^3)`` work and ``T H^2`` memory per iteration: they are skipped above ``--full-max-H``.

What to expect on CPU: the solver does several whole-sequence evaluations (and for ``full``, ``H``x more work per
evaluation), so it is slower than the scan of ``step`` there; its point is depth ``O(iterations * log T)`` on
accelerators. Ready to run inside a GPU benchmark script: it only uses ``jax.default_backend()``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn

CELLS = {
    "gru": lambda H: jaxrnn.gru(H),
    "lstm": lambda H: jaxrnn.lstm(H),
    "para_gru": lambda H: jaxrnn.para_gru(H),
    "para_lstm": lambda H: jaxrnn.para_lstm(H),
    "min_gru": lambda H: jaxrnn.min_gru(H),
}
JACOBIANS = ("full", "diagonal", "picard", "jacobi")


def _time(fn, args, repeats):
  jax.block_until_ready(fn(*args))  # compile and warm up
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def setup(name, T, H, args):
  cell = CELLS[name](H)
  params = cell.init(jax.random.key(0), args.features)
  if args.weights == "scaled":
    params = jax.tree.map(lambda p: 3.0 * p if jnp.issubdtype(p.dtype, jnp.floating) else p, params)
  xs = jax.random.normal(jax.random.key(1), (args.batch, T, args.features), jnp.float32)
  return cell, params, xs


def bench(name, T, H, args):
  cell, params, xs = setup(name, T, H, args)
  loss = lambda p, x, newton: jnp.sum(jaxrnn.unroll(cell, p, None, x, mode="step", newton=newton)[1] ** 2)
  grad = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)
  fwd_step = jax.jit(lambda p, x: jaxrnn.unroll(cell, p, None, x, mode="step")[1])
  want = np.asarray(fwd_step(params, xs))
  base = {"fwd": _time(fwd_step, (params, xs), args.repeats),
          "f+b": _time(lambda p, x: grad(p, x, None), (params, xs), args.repeats)}
  rows = []
  for jac in args.jacobians:
    if jac == "full" and H > args.full_max_H:
      continue
    newton = jaxrnn.ParallelNewton(jacobian=jac, max_iters=args.max_iters)
    solve = jax.jit(lambda p, x, newton=newton: jaxrnn.newton_unroll(cell, p, None, x, newton=newton))
    _, hs, _, info = solve(params, xs)
    err = float(np.max(np.abs(np.asarray(hs) - want)))
    if not err <= 1e-3:
      raise AssertionError(f"{name} T={T} H={H} {jac}: solver and scan of step differ by {err:.2g}")
    fwd = jax.jit(lambda p, x, newton=newton: jaxrnn.unroll(cell, p, None, x, mode="step", newton=newton)[1])
    t_fwd = _time(fwd, (params, xs), args.repeats)
    t_fb = _time(lambda p, x, newton=newton: grad(p, x, newton), (params, xs), args.repeats)
    rows.append((jac, int(info.iterations), bool(info.sequential), t_fwd, t_fb, base))
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated subset of " + ",".join(CELLS))
  parser.add_argument("--T", default="1000,16000,100000", help="comma-separated sequence lengths")
  parser.add_argument("--H", default="16,64,256", help="comma-separated hidden sizes")
  parser.add_argument("--jacobians", default=",".join(JACOBIANS))
  parser.add_argument("--weights", choices=("random", "scaled"), default="random")
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--features", type=int, default=16)
  parser.add_argument("--max-iters", type=int, default=None, help="iteration cap (default: T)")
  parser.add_argument("--full-max-H", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--quick", action="store_true", help="T = 1000, H = 16 and 64, 3 repeats")
  args = parser.parse_args()
  if args.quick:
    args.T, args.H, args.repeats = "1000", "16,64", 3
  args.jacobians = args.jacobians.split(",")
  print(f"backend={jax.default_backend()} devices={jax.device_count()} B={args.batch} F={args.features} "
        f"weights={args.weights} float32; ratio = step / solver (> 1: solver faster)")
  print(f"{'cell':10} {'T':>7} {'H':>4} {'jacobian':9} {'iters':>6} {'fwd ms':>9} {'step fwd':>9} {'ratio':>6} "
        f"{'f+b ms':>9} {'step f+b':>9} {'ratio':>6}")
  for name in args.cells.split(","):
    for T in map(int, args.T.split(",")):
      for H in map(int, args.H.split(",")):
        for jac, iters, seq, t_fwd, t_fb, base in bench(name, T, H, args):
          it = f"{iters}{'+seq' if seq else ''}"
          print(f"{name:10} {T:7d} {H:4d} {jac:9} {it:>6} {t_fwd:9.1f} {base['fwd']:9.1f} "
                f"{base['fwd'] / t_fwd:6.2f} {t_fb:9.1f} {base['f+b']:9.1f} {base['f+b'] / t_fb:6.2f}", flush=True)


if __name__ == "__main__":
  main()
