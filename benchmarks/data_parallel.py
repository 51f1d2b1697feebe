"""Steps/s of the data-parallel train step (jaxrnn.train.distributed) on 1, 2, 4, 8 devices of one process.

Run by hand (not part of the tests); on a CPU-only machine the devices are simulated:

    PYTHONPATH=. .venv/bin/python benchmarks/data_parallel.py configs/adding_lstm.toml --set train.batch_size=64
    PYTHONPATH=. .venv/bin/python benchmarks/data_parallel.py CONFIG --devices 1,2,4,8 --steps 50 --repeats 3

With ``--devices`` up to N, XLA is told to simulate N CPU devices (``--xla_force_host_platform_device_count``)
unless the process already sees that many devices (GPUs, TPUs). Simulated CPU devices share the machine's cores,
so on a CPU this measures the overhead of splitting the batch (placing each step's rows, the gradient
all-reduce), not a speed-up. Each mesh size is timed on the same global batch; "1 (plain)" is the unsharded
``run.train_step`` that ``jaxrnn train`` uses on one device.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("config")
  p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
  p.add_argument("--devices", default="1,2,4,8", help="mesh sizes, comma separated")
  p.add_argument("--steps", type=int, default=50, help="timed steps per repeat")
  p.add_argument("--repeats", type=int, default=3)
  args = p.parse_args(argv)
  sizes = [int(n) for n in args.devices.split(",")]
  if "jax" not in sys.modules and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={max(sizes)}").strip()

  import jax
  from jaxrnn.train import config, distributed, loop

  cfg = config.load(args.config, args.overrides)
  run = loop.build(cfg)
  data = run.task.data["train"]
  print(f"{cfg.task.name}/{cfg.model.cell} H={cfg.model.hidden_size} batch={cfg.train.batch_size} "
        f"on {jax.device_count()} {jax.devices()[0].platform} device(s), {os.cpu_count()} CPU cores")
  variants = [("1 (plain)", run.train_step, run.init_state)]
  for n in sizes:
    par = distributed.parallelize(run, distributed.make_mesh(n), force=True)
    variants.append((str(n), par.train_step, par.init_state))
  print("| devices | steps/s (median of %d x %d steps) |\n|---|---|" % (args.repeats, args.steps))
  for name, step, init in variants:
    state = init()
    state, loss = step(state, data)  # compile
    jax.block_until_ready(loss)
    rates = []
    for _ in range(args.repeats):
      t0 = time.perf_counter()
      for _ in range(args.steps):
        state, loss = step(state, data)
      jax.block_until_ready((state, loss))
      rates.append(args.steps / (time.perf_counter() - t0))
    print(f"| {name} | {statistics.median(rates):.1f} |", flush=True)


if __name__ == "__main__":
  main()
