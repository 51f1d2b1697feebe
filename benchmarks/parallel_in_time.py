"""The parallel-in-time solver (``unroll(..., newton=ParallelNewton(...))``) vs the scan of ``step``.

Run by hand (not part of the tests):

    .venv/bin/python benchmarks/parallel_in_time.py --quick            # T = 1k, H = 16, 64; every Jacobian choice
    .venv/bin/python benchmarks/parallel_in_time.py                    # T = 1k, 16k, 100k; H = 16, 64, 256
    .venv/bin/python benchmarks/parallel_in_time.py --cells gru,para_gru --T 1000,16000 --H 64 --jacobians full
    .venv/bin/python benchmarks/parallel_in_time.py --quick --weights random,trained    # adding-task weights too
    python benchmarks/parallel_in_time.py --gpu-size --budget 240                       # the grid, on a budget

For every cell, ``T``, ``H`` and Jacobian choice it reports the iterations to converge (``NewtonInfo``), whether
it converged within the cap (else the run is finished by the scan of ``step``: "seq" in the table), and the median
milliseconds of the forward pass (``fwd``) and of forward + backward (``f+b``: the gradient of a loss w.r.t.
params and inputs), next to the scan of ``step`` (``mode="step"``), under ``jax.jit``. The ratio is ``step /
solver`` (> 1: the solver is faster). Outputs are checked to agree with the scan of ``step`` before timing.

Weights (``--weights``, comma-separated): ``random`` (the cell's initialisers, inputs ``N(0, 1)`` with
``--features`` features), ``scaled`` (every floating parameter x3, saturating and closer to chaotic dynamics, where
the iterations approach ``T``), ``trained`` (trained here first, briefly, on the adding problem at length
``--train-T`` with Adam: ``--train-steps`` steps of batch 32, a linear readout of the last output; the table then
runs on adding-problem inputs of length ``T`` and prints the training MSE, baseline 0.167). ``full`` Jacobians cost
``O(T H^3)`` work and ``T H^2`` memory per iteration: they are skipped above ``--full-max-H``.

What to expect on CPU: the solver does several whole-sequence evaluations (and for ``full``, ``H``x more work per
evaluation), so it is slower than the scan of ``step`` there; its point is depth ``O(iterations * log T)`` on
accelerators. ``--gpu-size`` runs the issue's grid (``T`` = 1k, 16k, 100k; ``H`` = 16, 64, 256; random and
trained weights; every Jacobian) inside ``--budget`` seconds (default 300 with it): rows that would start after
the budget is spent are listed as skipped, so it fits in the GPU benchmark's time (``benchmarks/gpu.py``). It only
uses ``jax.default_backend()``.
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
  """The cell's params after ``args.train_steps`` Adam steps on the adding problem (length ``args.train_T``), and
  the final training MSE (baseline 1/6: predicting the mean)."""
  import optax  # the [train] extra
  k_cell, k_out = jax.random.split(jax.random.key(0))
  params = cell.init(k_cell, 2)
  h = jax.eval_shape(lambda p: jaxrnn.unroll(cell, p, None, jnp.zeros((1, 2, 2)))[1], params).shape[-1]
  head = (0.1 * jax.random.normal(k_out, (h, 1)), jnp.ones((1,)))

  def loss(model, key):
    p, (w, b) = model
    xs, ys = adding_batch(key, 32, args.train_T)
    hs = jaxrnn.unroll(cell, p, None, xs)[1]
    return jnp.mean(jnp.square((hs[:, -1] @ w + b)[:, 0] - ys))

  opt = optax.adam(3e-3)

  @jax.jit
  def update(model, state, key):
    value, grads = jax.value_and_grad(loss)(model, key)
    updates, state = opt.update(grads, state, model)
    return optax.apply_updates(model, updates), state, value

  model = (params, head)
  state = opt.init(model)
  values = []
  for i in range(args.train_steps):
    model, state, value = update(model, state, jax.random.key(1000 + i))
    values.append(float(value))
  return model[0], float(np.mean(values[-20:]))


def setup(name, T, H, weights, args, trained):
  cell = CELLS[name](H)
  if weights == "trained":
    if (name, H) not in trained:
      trained[(name, H)] = train_on_adding(cell, args)
    params, _ = trained[(name, H)]
    xs, _ = adding_batch(jax.random.key(1), args.batch, T)
    return cell, params, xs.astype(jnp.float32)
  params = cell.init(jax.random.key(0), args.features)
  if weights == "scaled":
    params = jax.tree.map(lambda p: 3.0 * p if jnp.issubdtype(p.dtype, jnp.floating) else p, params)
  xs = jax.random.normal(jax.random.key(1), (args.batch, T, args.features), jnp.float32)
  return cell, params, xs


def bench(name, T, H, weights, args, trained):
  cell, params, xs = setup(name, T, H, weights, args, trained)
  loss = lambda p, x, newton: jnp.sum(jaxrnn.unroll(cell, p, None, x, mode="step", newton=newton)[1] ** 2)
  grad = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)
  fwd_step = jax.jit(lambda p, x: jaxrnn.unroll(cell, p, None, x, mode="step")[1])
  want = np.asarray(fwd_step(params, xs))
  base = {"fwd": median_ms(fwd_step, (params, xs), args.repeats),
          "f+b": median_ms(lambda p, x: grad(p, x, None), (params, xs), args.repeats)}
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
    t_fwd = median_ms(fwd, (params, xs), args.repeats)
    t_fb = median_ms(lambda p, x, newton=newton: grad(p, x, newton), (params, xs), args.repeats)
    rows.append((jac, int(info.iterations), bool(info.sequential), t_fwd, t_fb, base))
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
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--train-steps", type=int, default=300, help="Adam steps of the trained weights")
  parser.add_argument("--train-T", type=int, default=50, help="the adding problem's length in training")
  parser.add_argument("--budget", type=float, default=None, help="seconds; rows that would start later are skipped")
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
  end = None if args.budget is None else time.perf_counter() + args.budget
  print(f"backend={jax.default_backend()} devices={jax.device_count()} B={args.batch} float32; random/scaled: "
        f"F={args.features} N(0, 1) inputs; trained: the adding problem (F=2), {args.train_steps} Adam steps at "
        f"T={args.train_T}; ratio = step / solver (> 1: solver faster)")
  print("| cell | weights | T | H | jacobian | iters | fwd ms | step fwd ms | ratio | f+b ms | step f+b ms | ratio |")
  print("|---|---|---|---|---|---|---|---|---|---|---|---|")
  trained, skipped = {}, []
  for weights in weights_list:
    for name in args.cells.split(","):
      for T in map(int, args.T.split(",")):
        for H in map(int, args.H.split(",")):
          if end is not None and time.perf_counter() > end:
            skipped.append(f"{name} {weights} T={T} H={H}")
            continue
          for jac, iters, seq, t_fwd, t_fb, base in bench(name, T, H, weights, args, trained):
            it = f"{iters}{'+seq' if seq else ''}"
            print(f"| {name} | {weights} | {T} | {H} | {jac} | {it} | {t_fwd:.1f} | {base['fwd']:.1f} | "
                  f"{base['fwd'] / t_fwd:.2f} | {t_fb:.1f} | {base['f+b']:.1f} | {base['f+b'] / t_fb:.2f} |",
                  flush=True)
  for (name, H), (_, mse) in sorted(trained.items()):
    print(f"trained {name} H={H}: adding-problem training MSE {mse:.3f} (baseline 0.167)")
  if skipped:
    print(f"skipped (time budget {args.budget:.0f} s spent): " + "; ".join(skipped))


if __name__ == "__main__":
  main()
