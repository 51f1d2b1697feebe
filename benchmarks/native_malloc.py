"""The native path's malloc setting (``jaxrnn/native/_malloc.py``) on and off: page faults per call, wall clock and
peak RSS of one workload, in alternating child processes (the setting is process-wide, so each side needs a
process of its own; ``JAXRNN_NATIVE_MALLOC=0`` turns it off).

    PYTHONPATH=. python benchmarks/native_malloc.py --workload W1 --cell lstm --mode train --pairs 3

Each child checks first that its path's values equal the pure-JAX path's, then times ``--calls`` calls.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp

import jaxrnn
from benchmarks.native_default import CELLS, WORKLOADS, relative_error, timed_function


def child(args) -> dict:
  B, T, F, H = WORKLOADS[args.workload]
  cell = CELLS[args.cell](H)
  params = cell.init(jax.random.key(0), F)
  xs = jax.random.normal(jax.random.key(1), (B, T, F), jnp.float32)
  native = {"default": None, "true": True}[args.native]
  f, pure = timed_function(cell, args.mode, native), timed_function(cell, args.mode, False)
  assert relative_error(f(params, xs), pure(params, xs)) <= 1e-4, "outputs disagree"
  jax.block_until_ready(f(params, xs))
  faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  times = []
  for _ in range(args.calls):
    start = time.perf_counter()
    jax.block_until_ready(f(params, xs))
    times.append(time.perf_counter() - start)
  faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
  return {"faults": faults / args.calls, "median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times),
          "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
          "status": jaxrnn.native.status_line()}


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workload", choices=sorted(WORKLOADS), default="W1")
  parser.add_argument("--cell", choices=sorted(CELLS), default="lstm")
  parser.add_argument("--mode", choices=["infer", "train"], default="train")
  parser.add_argument("--native", choices=["default", "true"], default="default",
                      help="RunOptions(native=None) (default) or native=True")
  parser.add_argument("--calls", type=int, default=20)
  parser.add_argument("--pairs", type=int, default=3)
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    print(json.dumps(child(args)))
    return
  print(f"{args.cell} {args.workload} {args.mode}, native={args.native}, {args.calls} calls per process, "
        f"{args.pairs} alternating pairs; wall clock, all cores")
  print("| malloc | page faults / call | median ms | min ms | peak RSS MiB |\n|---|---|---|---|---|")
  argv = [sys.executable, __file__, "--child"] + sys.argv[1:]
  for _ in range(args.pairs):
    for setting in ("0", "1"):
      env = dict(os.environ, JAXRNN_NATIVE_MALLOC=setting)
      out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout
      r = json.loads(out.strip().splitlines()[-1])
      name = "glibc's defaults" if setting == "0" else "kept (the default)"
      if setting == "1" and "keeps freed blocks" not in r["status"]:
        name = "not set: " + r["status"].split("malloc: ")[-1]
      print(f"| {name} | {r['faults']:.0f} | {r['median_ms']:.1f} | {r['min_ms']:.1f} | {r['max_rss_mib']:.0f} |")


if __name__ == "__main__":
  main()
