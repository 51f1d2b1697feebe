"""What the call before costs: jaxrnn's default path and PyTorch's layer, each timed alone and right after the
other implementations' calls, in one process (as ``rnn_layers.py`` interleaves them).

    PYTHONPATH=. python benchmarks/neighbours.py --cell lstm --workload W1 --calls 30

For each timed implementation (``jaxrnn``: the default path, ``RunOptions(native=None)``; ``torch``:
``torch.nn.LSTM``/``GRU``; both called as in ``rnn_layers.py``: the inputs' gradient of the outputs' sum of
squares for training workloads, the outputs for inference ones) and each
predecessor (none; the pure-JAX path's program, ``native=False``; the other one of the two), the table gives the
median and quartiles of ``--calls`` timed calls, each right after one untimed call of the predecessor, with no pause
between them, and the page faults per timed call. Outputs are checked to agree first (within 1e-4 of the largest
magnitude). Wall clock, all cores (torch with as many threads as the process may use).
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # `python benchmarks/...` too
from benchmarks import rnn_layers  # noqa: E402
from benchmarks.native_default import relative_error  # noqa: E402


def timed(call, before, calls: int):
  """``(median, 25th, 75th percentile ms, page faults per call)`` of ``call()`` right after ``before()``, each waited
  for (after three untimed pairs)."""
  times, faults = [], 0
  for _ in range(3):  # untimed: the pairs' first calls fault in what the timed ones reuse
    jax.block_until_ready(before())
    jax.block_until_ready(call())
  for _ in range(calls):
    jax.block_until_ready(before())
    start_faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    jax.block_until_ready(call())
    times.append(1e3 * (time.perf_counter() - start))
    faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start_faults
  q1, _, q3 = statistics.quantiles(times, n=4)
  return statistics.median(times), q1, q3, faults / calls


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--cell", choices=sorted(rnn_layers.GATES), default="lstm")
  parser.add_argument("--workload", choices=sorted(rnn_layers.WORKLOADS), default="W1")
  parser.add_argument("--calls", type=int, default=30)
  args = parser.parse_args()
  threads = len(os.sched_getaffinity(0))
  rnn_layers.TORCH_THREADS = threads  # torch_impl sets torch's threads from it
  B, T, F, H, train = rnn_layers.WORKLOADS[args.workload]
  w = rnn_layers.make_weights(args.cell, F, H)
  xs = np.random.default_rng(1).standard_normal((B, T, F)).astype(np.float32)
  xs_j = jnp.asarray(xs)
  makers = {"jaxrnn": lambda: rnn_layers.jaxrnn_impl(args.cell, w, train, native=None),
            "pure-JAX": lambda: rnn_layers.jaxrnn_impl(args.cell, w, train, native=False),
            "torch": lambda: rnn_layers.torch_impl(args.cell, w, train)}
  impls = {}
  for name, make in makers.items():
    fn = make()
    impls[name] = functools.partial(fn, xs) if name == "torch" else functools.partial(fn, xs_j)
  want = impls["pure-JAX"]()
  for name, f in impls.items():
    err = relative_error(f(), want)
    assert err <= 1e-4, f"{name} disagrees with the pure-JAX path: {err:.2e}"
  print(f"{args.cell} {args.workload} {'train' if train else 'infer'} B={B} T={T} F={F} H={H}; wall clock, "
        f"{threads} threads, {args.calls} calls each, right after one call of the predecessor")
  print("| timed | after | median ms | 25% | 75% | page faults / call |\n|---|---|---|---|---|---|")
  for name, other in (("jaxrnn", "torch"), ("torch", "jaxrnn")):
    for label, before in (("nothing", lambda: None), ("pure-JAX", impls["pure-JAX"]), (other, impls[other])):
      median, q1, q3, faults = timed(impls[name], before, args.calls)
      print(f"| {name} | {label} | {median:.2f} | {q1:.2f} | {q3:.2f} | {faults:.0f} |")
  print(jaxrnn.native.status_line())


if __name__ == "__main__":
  main()
