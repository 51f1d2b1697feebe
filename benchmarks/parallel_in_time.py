"""The parallel-in-time solver (``unroll(..., newton=ParallelNewton(...))``) vs the scan of ``step``.

Run by hand (not part of the tests):

    .venv/bin/python benchmarks/parallel_in_time.py --quick            # T = 1k, H = 16, 64; every Jacobian choice
    .venv/bin/python benchmarks/parallel_in_time.py                    # T = 1k, 16k, 100k; H = 16, 64, 256
    .venv/bin/python benchmarks/parallel_in_time.py --cells gru,para_gru --T 1000,16000 --H 64 --jacobians full
    .venv/bin/python benchmarks/parallel_in_time.py --quick --weights random,trained    # adding-task weights too
    python benchmarks/parallel_in_time.py --gpu-size --budget 240                       # the grid, on a budget
    python benchmarks/parallel_in_time.py --cells gru --weights random,trained --max-iters 200 --budget 360  # CPU

For every cell, ``T``, ``H`` and Jacobian choice it reports the iterations to converge (``NewtonInfo``), whether
it converged within the cap (else the run is finished by the scan of ``step``: "seq" in the table), and the median
milliseconds of the forward pass (``fwd``) and of forward + backward (``f+b``: the gradient of a loss w.r.t.
params and inputs), next to the scan of ``step`` (``mode="step"``), under ``jax.jit``. The ratio is ``step /
solver`` (> 1: the solver is faster). Outputs are checked to agree with the scan of ``step`` before timing.

Weights (``--weights``, comma-separated): ``random`` (the cell's initialisers, inputs ``N(0, 1)`` with
``--features`` features), ``scaled`` (every floating parameter x3, saturating and closer to chaotic dynamics, where
the iterations approach ``T``), ``trained`` (trained here when a row first needs them, inside the budget, on the
adding problem at length ``--train-T`` (default 20) with Adam: ``--train-steps`` steps (default 300) of batch 64,
gradients clipped, a linear readout of the last output, one compiled ``lax.scan``; the lines after the table give
each cell's MSE on a held-out batch of 1024, baseline 0.167, and weights that did not learn, MSE above half the
baseline, are refused; the table runs them on adding-problem inputs of length ``T``). Training them all up front
spent most of one GPU run's 100 s budget before its first row (five rows ran).

Rows that cannot run are listed with the reason instead of silently missing: ``full`` above ``--full-max-H``
(``O(T H^3)`` work, ``[T, B, H, H]`` Jacobians), ``diagonal`` there too for a cell that declares no diagonal (``H``
JVPs of the step per iteration, ``O(T H^3)`` work), a solver program whose compiled temp memory exceeds ``--max-gib``
(read from the compiled program before it runs), and, with ``--budget``, rows predicted (from the same row at the
largest ``T`` run so far, time linear in ``T``: a lower bound) to end after the budget or starting after it.
``--max-iters`` caps the iterations (default ``T``); a capped run is finished by the scan of ``step`` (``+seq``),
and its time includes both.

What to expect on CPU: the solver does several whole-sequence evaluations (and for ``full``, ``H``x more work per
evaluation), so it is slower than the scan of ``step`` there; its point is depth ``O(iterations * log T)`` on
accelerators. ``--gpu-size`` runs the issue's grid (``T`` = 1k, 16k, 100k; ``H`` = 16, 64, 256; random and
trained weights; every Jacobian) inside ``--budget`` seconds (default 300 with it), so it fits in the GPU
benchmark's time (``benchmarks/gpu.py``). It only uses ``jax.default_backend()``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # `python benchmarks/...` too
from benchmarks._timing import median_ms  # noqa: E402

CELLS = {
    "gru": lambda H: jaxrnn.gru(H),
    "lstm": lambda H: jaxrnn.lstm(H),
    "para_gru": lambda H: jaxrnn.para_gru(H),
    "para_lstm": lambda H: jaxrnn.para_lstm(H),
    "min_gru": lambda H: jaxrnn.min_gru(H),
}
JACOBIANS = ("full", "diagonal", "picard", "jacobi")
WEIGHTS = ("random", "scaled", "trained")


def adding_batch(key, batch, T):
  """Inputs ``[B, T, 2]`` and targets ``[B]`` of the adding problem (:mod:`jaxrnn.train.tasks.adding`)."""
  from jaxrnn.train.tasks import adding  # the [train] extra (optax) is only needed for trained weights
  return adding.batch((), key, batch, seq_len=T)


def train_on_adding(cell, args):
  """The cell's params after ``args.train_steps`` Adam steps (learning rate ``args.train_lr``, gradients clipped to
  global norm 1, batch 64) on the adding problem at length ``args.train_T``, a linear readout of the last output;
  and the MSE on a held-out batch of 1024 sequences (baseline 1/6: predicting the mean). The training loop is one
  ``lax.scan`` under ``jit`` (one compile)."""
  import optax  # the [train] extra
  k_cell, k_out = jax.random.split(jax.random.key(0))
  params = cell.init(k_cell, 2)
  h = jax.eval_shape(lambda p: jaxrnn.unroll(cell, p, None, jnp.zeros((1, 2, 2)))[1], params).shape[-1]
  head = (0.1 * jax.random.normal(k_out, (h, 1)), jnp.ones((1,)))

  def mse(model, xs, ys):
    p, (w, b) = model
    hs = jaxrnn.unroll(cell, p, None, xs)[1]
    return jnp.mean(jnp.square((hs[:, -1] @ w + b)[:, 0] - ys))

  opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(args.train_lr))

  @jax.jit
  def train(model):
    def update(carry, key):
      model, state = carry
      value, grads = jax.value_and_grad(lambda m: mse(m, *adding_batch(key, 64, args.train_T)))(model)
      updates, state = opt.update(grads, state, model)
      return (optax.apply_updates(model, updates), state), value

    keys = jax.random.split(jax.random.key(1000), args.train_steps)
    (model, _), _ = jax.lax.scan(update, (model, opt.init(model)), keys)
    return model, mse(model, *adding_batch(jax.random.key(999), 1024, args.train_T))

  model, held_out = train((params, head))
  return model[0], float(held_out)


class Trained:
  """The trained weights of each (cell, H), trained on the adding problem when a row first needs them (so that
  ``--budget`` goes to the table's rows, in order, not to training every size up front); refuses weights that did
  not learn the task (MSE above half the baseline)."""

  def __init__(self, args):
    self.args = args
    self.weights = {}  # (cell, H) -> (params, held-out MSE)

  def get(self, name, H):
    if (name, H) not in self.weights:
      from jaxrnn.train.tasks import adding
      params, mse = train_on_adding(CELLS[name](H), self.args)
      if not mse < adding.BASELINE_MSE / 2:
        raise RuntimeError(f"{name} H={H} did not learn the adding problem: held-out MSE {mse:.3f} (baseline "
                           f"{adding.BASELINE_MSE:.3f}); raise --train-steps or lower --train-T")
      self.weights[(name, H)] = (params, mse)
    return self.weights[(name, H)][0]

  def report(self):
    for (name, H), (_, mse) in sorted(self.weights.items()):
      print(f"trained: {name} H={H}, {self.args.train_steps} Adam steps on the adding problem at "
            f"T={self.args.train_T}: held-out MSE {mse:.4f} (baseline 0.167); the table runs it on adding-problem "
            f"inputs of length T")


def setup(name, T, H, weights, args, trained):
  cell = CELLS[name](H)
  if weights == "trained":
    params = trained.get(name, H)
    xs, _ = adding_batch(jax.random.key(1), args.batch, T)
    return cell, params, xs.astype(jnp.float32)
  params = cell.init(jax.random.key(0), args.features)
  if weights == "scaled":
    params = jax.tree.map(lambda p: 3.0 * p if jnp.issubdtype(p.dtype, jnp.floating) else p, params)
  xs = jax.random.normal(jax.random.key(1), (args.batch, T, args.features), jnp.float32)
  return cell, params, xs


class Grid:
  """The rows' budget: what is left of ``--budget`` and each row's seconds (compiling apart), to skip a row
  predicted not to fit."""

  def __init__(self, budget):
    self.end = None if budget is None else time.perf_counter() + budget
    self.seconds = {}  # (cell, weights, H, what) -> (T, running seconds, compiling seconds)
    self.compiling = 0.0  # seconds spent compiling in the current row

  def left(self):
    return float("inf") if self.end is None else self.end - time.perf_counter()

  def compiled(self, fn, *args):
    """``jax.jit(fn)`` compiled for ``args`` (ahead of time) and its temp memory in GiB."""
    start = time.perf_counter()
    program = jax.jit(fn).lower(*args).compile()
    self.compiling += time.perf_counter() - start
    memory = program.memory_analysis()
    return program, (float("nan") if memory is None else memory.temp_size_in_bytes / 2 ** 30)

  def too_long(self, key, T):
    """Why a row (``key``: cell, weights, H, what) would not fit, from the same row at the largest ``T`` run so far
    (running time linear in ``T``: a lower bound where iterations grow with ``T``); ``None`` if it may fit."""
    left = self.left()
    if left <= 0:
      return "time budget spent"
    if key in self.seconds:
      t_prev, running, compiling = self.seconds[key]
      predicted = compiling + running * T / t_prev
      if predicted > left:
        return f"predicted {predicted:.0f} s (T={t_prev}: {running + compiling:.1f} s) > {left:.0f} s left"
    return None

  def start(self):
    self.compiling = 0.0
    return time.perf_counter()

  def record(self, key, T, start):
    self.seconds[key] = (T, time.perf_counter() - start - self.compiling, self.compiling)


def bench(name, T, H, weights, args, trained, grid):
  """The rows of one (cell, weights, T, H), each the table's columns from ``jacobian`` on: the solver with each
  Jacobian choice next to the scan of ``step``, or why it was skipped."""
  skip = lambda jac, why: [jac, f"skipped: {why}"] + [""] * 7
  why = grid.too_long((name, weights, H, "step"), T)
  if why is not None:
    return [skip("all", why)]
  start = grid.start()
  cell, params, xs = setup(name, T, H, weights, args, trained)
  loss = lambda p, x, newton: jnp.sum(jaxrnn.unroll(cell, p, None, x, mode="step", newton=newton)[1] ** 2)
  grad = lambda newton: jax.grad(lambda p, x: loss(p, x, newton), argnums=(0, 1))
  fwd_step, _ = grid.compiled(lambda p, x: jaxrnn.unroll(cell, p, None, x, mode="step")[1], params, xs)
  grad_step, _ = grid.compiled(grad(None), params, xs)
  once = time.perf_counter()
  want = np.asarray(fwd_step(params, xs))
  repeats = args.repeats if time.perf_counter() - once < 2.0 else 1  # long runs: one timed call after the warm-up
  base = {"fwd": median_ms(fwd_step, (params, xs), repeats), "f+b": median_ms(grad_step, (params, xs), repeats)}
  grid.record((name, weights, H, "step"), T, start)
  rows = []
  for jac in args.jacobians:
    key = (name, weights, H, jac)
    if jac == "full" and H > args.full_max_H:
      rows.append(skip(jac, f"H > --full-max-H={args.full_max_H}: O(T H^3) work, [T, B, H, H] Jacobians"))
      continue
    if jac == "diagonal" and cell.carry_jacobian_diagonal is None and H > args.full_max_H:
      rows.append(skip(jac, f"H > --full-max-H={args.full_max_H}: no declared diagonal, so H JVPs of the step per "
                            f"iteration, O(T H^3) work"))
      continue
    why = grid.too_long(key, T)
    if why is not None:
      rows.append(skip(jac, why))
      continue
    start = grid.start()
    newton = jaxrnn.ParallelNewton(jacobian=jac, max_iters=args.max_iters)
    run = lambda p, x, newton=newton: jaxrnn.newton_unroll(cell, p, None, x, newton=newton)
    solve, gib = grid.compiled(run, params, xs)  # the forward pass (and the iterations made)
    fb, gib_fb = grid.compiled(grad(newton), params, xs)
    if max(gib, gib_fb) > args.max_gib:
      rows.append(skip(jac, f"compiled temp memory {max(gib, gib_fb):.1f} GiB > --max-gib={args.max_gib:g}"))
      continue
    once = time.perf_counter()
    _, hs, _, info = jax.block_until_ready(solve(params, xs))
    once = time.perf_counter() - once
    err = float(np.max(np.abs(np.asarray(hs) - want)))
    if not err <= 1e-3:
      raise AssertionError(f"{name} T={T} H={H} {jac}: solver and scan of step differ by {err:.2g}")
    repeats = args.repeats if once < 2.0 else 1  # long runs: one timed call after the warm-up
    t_fwd = median_ms(solve, (params, xs), repeats)
    t_fb = median_ms(fb, (params, xs), repeats)
    iterations = f"{int(info.iterations)}{'+seq' if bool(info.sequential) else ''}"
    rows.append([jac, iterations, f"{t_fwd:.1f}", f"{base['fwd']:.1f}", f"{base['fwd'] / t_fwd:.2f}", f"{t_fb:.1f}",
                 f"{base['f+b']:.1f}", f"{base['f+b'] / t_fb:.2f}", f"{max(gib, gib_fb):.2f}"])
    grid.record(key, T, start)
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated subset of " + ",".join(CELLS))
  parser.add_argument("--T", default="1000,16000,100000", help="comma-separated sequence lengths")
  parser.add_argument("--H", default="16,64,256", help="comma-separated hidden sizes")
  parser.add_argument("--jacobians", default=",".join(JACOBIANS))
  parser.add_argument("--weights", default="random", help="comma-separated subset of " + ",".join(WEIGHTS))
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--features", type=int, default=16, help="input features (random and scaled weights)")
  parser.add_argument("--max-iters", type=int, default=None, help="iteration cap (default: T)")
  parser.add_argument("--full-max-H", type=int, default=64)
  parser.add_argument("--max-gib", type=float, default=4.0, help="skip solver rows with more compiled temp memory")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--train-steps", type=int, default=300, help="Adam steps of the trained weights")
  parser.add_argument("--train-T", type=int, default=20, help="the adding problem's length in training")
  parser.add_argument("--train-lr", type=float, default=1e-2, help="Adam's learning rate in training")
  parser.add_argument("--budget", type=float, default=None,
                      help="seconds; rows predicted to end later, or starting later, are skipped")
  parser.add_argument("--quick", action="store_true", help="T = 1000, H = 16 and 64, 3 repeats")
  parser.add_argument("--gpu-size", action="store_true",
                      help="T = 1k, 16k, 100k; H = 16, 64, 256; random and trained weights; 3 repeats; "
                           "--budget 300 unless given")
  args = parser.parse_args()
  if args.quick:
    args.T, args.H, args.repeats = "1000", "16,64", 3
  if args.gpu_size:
    args.T, args.H, args.weights, args.repeats = "1000,16000,100000", "16,64,256", "random,trained", 3
    args.budget = 300.0 if args.budget is None else args.budget
  args.jacobians = args.jacobians.split(",")
  weights_list = args.weights.split(",")
  unknown = sorted(set(weights_list) - set(WEIGHTS))
  if unknown:
    parser.error(f"unknown --weights {unknown}; choose from {WEIGHTS}")
  cells = args.cells.split(",")
  sizes = [int(h) for h in args.H.split(",")]
  grid = Grid(args.budget)
  print(f"backend={jax.default_backend()} devices={jax.device_count()} B={args.batch} float32; random/scaled: "
        f"F={args.features} N(0, 1) inputs; iteration cap {args.max_iters or 'T'} (+seq: the scan of step finished "
        f"the run); ratio = step / solver (> 1: solver faster); budget {args.budget or 'none'} s")
  trained = Trained(args)
  print("| cell | weights | T | H | jacobian | iters | fwd ms | step fwd ms | ratio | f+b ms | step f+b ms | ratio | "
        "GiB |")
  print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
  # T outermost: a budget spent on the long rows leaves every size and weight measured at the shorter T.
  for T in map(int, args.T.split(",")):
    for name in cells:
      for H in sizes:
        for weights in weights_list:
          for row in bench(name, T, H, weights, args, trained, grid):
            print("| " + " | ".join([name, weights, str(T), str(H)] + row) + " |", flush=True)
  print()
  trained.report()


if __name__ == "__main__":
  main()
