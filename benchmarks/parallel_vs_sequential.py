"""Parallel-in-time (associative scan) vs sequential (lax.scan of step) evaluation of the linear-recurrent cells.

Run by hand (not part of the tests):

    .venv/bin/python benchmarks/parallel_vs_sequential.py                       # T = 256 ... 16384
    .venv/bin/python benchmarks/parallel_vs_sequential.py --quick               # T = 256, 1024, 4096, 3 repeats
    .venv/bin/python benchmarks/parallel_vs_sequential.py --max-T 4096 --cells min_gru,gru
    .venv/bin/python benchmarks/parallel_vs_sequential.py --quick --auto --cells min_gru,min_lstm,lru,rg_lru,mlstm

For every cell and ``T`` it times ``jaxrnn.unroll(..., mode="sequence")`` (the parallel path, "par") and
``mode="step"`` (the sequential ``lax.scan``, "seq"), forward only ("fwd") and forward + backward ("f+b": the
gradient of a loss with respect to params and inputs), under ``jax.jit``, and prints median milliseconds and the
ratio ``seq / par`` (> 1: the parallel path is faster). GRU, LSTM and sLSTM have no parallel path (their gates
read ``h``); they are timed sequentially as baselines. The mLSTM runs its chunkwise form (chunks of 64; its
scan of ``step`` keeps a ``[DH, DH]`` memory per step), timed up to ``--mlstm-max-T`` only. Outputs of the two
paths are checked to agree before timing. ``--auto`` also times ``mode="auto"`` (the path
:mod:`jaxrnn.path_choice`'s measured rule picks, separately forward and forward + backward) and prints its time
over the faster of the two paths (1.0: it picked the faster one).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # `python benchmarks/...` too
from benchmarks._timing import interleaved_ms  # noqa: E402

CELLS = {
    "min_gru": lambda H: jaxrnn.min_gru(H),
    "min_lstm": lambda H: jaxrnn.min_lstm(H),
    "lru": lambda H: jaxrnn.lru(H),
    "rg_lru": lambda H: jaxrnn.rg_lru(H),
    "mlstm": lambda H: jaxrnn.mlstm(H, num_heads=4),
    "slstm": lambda H: jaxrnn.slstm(H),
    "gru": lambda H: jaxrnn.gru(H),
    "lstm": lambda H: jaxrnn.lstm(H),
}


def bench_cell(name, T, args):
  cell = CELLS[name](args.hidden)
  params = cell.init(jax.random.key(0), args.features)
  xs = jax.random.normal(jax.random.key(1), (args.batch, T, args.features), jnp.float32)
  carry = cell.initial_carry(params, (args.batch,))
  modes = ["step"] + (["sequence"] if cell.sequence is not None else [])
  if args.auto and cell.sequence is not None:
    modes.append("auto")
  fns, outs = {}, {}
  for mode in modes:
    fwd = jax.jit(lambda p, x, mode=mode: jaxrnn.unroll(cell, p, carry, x, mode=mode)[1])

    def loss(p, x, mode=mode):
      return jnp.sum(jaxrnn.unroll(cell, p, carry, x, mode=mode)[1] ** 2)

    fns[("fwd", mode)] = fwd
    fns[("f+b", mode)] = jax.jit(jax.grad(loss, argnums=(0, 1)))
    outs[mode] = np.asarray(fwd(params, xs))
  stat = min if args.fastest else statistics.median
  row = interleaved_ms(fns, (params, xs), args.repeats, stat)  # interleaved: a loaded machine slows all alike
  for mode in modes[1:]:
    err = np.max(np.abs(outs[mode] - outs["step"])) / max(np.max(np.abs(outs["step"])), 1e-30)
    if not err <= 1e-3:
      raise AssertionError(f"{name} T={T}: mode={mode!r} and the scan of step differ (relative error {err:.2g})")
  return row


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated subset of " + ",".join(CELLS))
  parser.add_argument("--min-T", type=int, default=256)
  parser.add_argument("--max-T", type=int, default=16384)
  parser.add_argument("--mlstm-max-T", type=int, default=2048,
                      help="the largest T for the mLSTM (its scan of step keeps a [DH, DH] memory per step)")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--features", type=int, default=32)
  parser.add_argument("--hidden", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--quick", action="store_true", help="T = 256, 1024, 4096 (up to --max-T), 3 repeats")
  parser.add_argument("--fastest", action="store_true",
                      help="report the fastest of the repeats instead of the median (on a loaded machine)")
  parser.add_argument("--T", default=None, help="comma-separated lengths instead of --min-T .. --max-T")
  parser.add_argument("--auto", action="store_true",
                      help="also time mode='auto' and print its time over the faster of the two paths")
  args = parser.parse_args()
  if args.quick:
    args.repeats = min(args.repeats, 3)
  names = [n.strip() for n in args.cells.split(",") if n.strip()]
  unknown = sorted(set(names) - set(CELLS))
  if unknown:
    parser.error(f"unknown cells {unknown}; choose from {sorted(CELLS)}")
  lengths = [] if args.T is None else [int(t) for t in args.T.split(",")]
  T = args.min_T if args.T is None else args.max_T + 1
  while T <= args.max_T:
    if not args.quick or T in (256, 1024, 4096):
      lengths.append(T)
    T *= 2

  print(f"# jax {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()}), batch={args.batch}, "
        f"F={args.features}, H={args.hidden}, float32, {'fastest' if args.fastest else 'median'} of {args.repeats}, "
        f"modes interleaved; ratio = seq / par")
  header = ("cell", "T", "fwd seq ms", "fwd par ms", "fwd ratio", "f+b seq ms", "f+b par ms", "f+b ratio")
  if args.auto:
    header += ("fwd auto / best", "f+b auto / best")
  print("| " + " | ".join(header) + " |")
  print("|" + "---|" * len(header))
  for name in names:
    for T in lengths:
      if name == "mlstm" and T > args.mlstm_max_T:
        continue
      row = bench_cell(name, T, args)
      cells = [name, str(T)]
      for kind in ("fwd", "f+b"):
        seq = row[(kind, "step")]
        par = row.get((kind, "sequence"))
        cells += [f"{seq:.2f}", "—" if par is None else f"{par:.2f}", "—" if par is None else f"{seq / par:.2f}"]
      if args.auto:
        for kind in ("fwd", "f+b"):
          auto = row.get((kind, "auto"))
          best = min(row[(kind, "step")], row.get((kind, "sequence"), float("inf")))
          cells.append("—" if auto is None else f"{auto / best:.2f}")
      print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
  main()
