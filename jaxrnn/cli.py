"""The ``jaxrnn`` command: ``train``, ``eval``, ``sample`` and ``compare`` (see ``jaxrnn --help``).

Usage::

  jaxrnn train [CONFIG] [--set section.key=value ...] [--run-dir DIR]   # resumes if DIR has checkpoints
  jaxrnn train [CONFIG] --coordinator-address HOST:PORT --num-processes N --process-id I   # one per process
  jaxrnn eval RUN_DIR
  jaxrnn sample RUN_DIR [--prompt TEXT] [--length N] [--temperature T] [--top-k K] [--seed S]
  jaxrnn compare CONFIG... [--set ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Optional, Sequence

import jax

from jaxrnn.train import config as config_lib
from jaxrnn.train import distributed
from jaxrnn.train import loop
from jaxrnn.train.config import ConfigError


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="jaxrnn", description="Train, evaluate, sample and compare recurrent models.")
  sub = p.add_subparsers(dest="command", required=True)

  t = sub.add_parser("train", help="train a config (default: a character-level LSTM on Python's stdlib source)")
  t.add_argument("config", nargs="?", help="a TOML config (see configs/); none: the default config")
  t.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                 help="override a config value, e.g. --set optimizer.lr=3e-4 (repeatable)")
  t.add_argument("--run-dir", help="run directory (default: runs/<config name>); an existing one is resumed")
  t.add_argument("--no-progress", action="store_true", help="no progress bar")
  d = t.add_argument_group("multi-process runs (one command per process; all devices of one process need none)")
  d.add_argument("--coordinator-address", metavar="HOST:PORT",
                 help="process 0's host and a free port, the same on every process (or $JAX_COORDINATOR_ADDRESS)")
  d.add_argument("--num-processes", type=int, metavar="N", help="number of processes")
  d.add_argument("--process-id", type=int, metavar="I", help="this process's index, 0..N-1")
  d.add_argument("--distributed", action="store_true",
                 help="join a multi-process run detected from the environment (Cloud TPU pod, SLURM, Open MPI, "
                      "Kubernetes) with jax.distributed.initialize()")

  e = sub.add_parser("eval", help="held-out loss of a run's latest checkpoint")
  e.add_argument("run_dir")

  s = sub.add_parser("sample", help="sample text from a charlm run")
  s.add_argument("run_dir")
  s.add_argument("--prompt", default="def ")
  s.add_argument("--length", type=int, default=400)
  s.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
  s.add_argument("--top-k", type=int, default=0, help="sample among the k most likely characters (0 = all)")
  s.add_argument("--seed", type=int, default=0)

  c = sub.add_parser("compare", help="train several configs, draw one comparison plot and table")
  c.add_argument("configs", nargs="+")
  c.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
  c.add_argument("--out", default="runs/compare", help="directory for the runs, compare.png and compare.md")
  c.add_argument("--no-progress", action="store_true")
  return p


def _name(config: Optional[str]) -> str:
  return pathlib.Path(config).stem if config else "default"


def _initialize_distributed(args) -> None:
  """``jax.distributed.initialize`` if the command line asks for a multi-process run (before JAX starts)."""
  manual = (args.coordinator_address, args.num_processes, args.process_id)
  if all(v is None for v in manual) and not args.distributed:
    return
  if not args.distributed and (args.num_processes is None or args.process_id is None):
    raise ConfigError("a multi-process run needs --num-processes and --process-id (and --coordinator-address or "
                      "$JAX_COORDINATOR_ADDRESS) on every process, or --distributed on a detected cluster")
  distributed.initialize(args.coordinator_address, args.num_processes, args.process_id)


def _train(args) -> int:
  cfg = config_lib.load(args.config, args.overrides)
  _initialize_distributed(args)
  main = jax.process_index() == 0
  say = print if main else (lambda *a, **k: None)
  run_dir = pathlib.Path(args.run_dir or pathlib.Path("runs") / _name(args.config))
  say(f"training {cfg.task.name}/{cfg.model.cell} (H={cfg.model.hidden_size}, {cfg.train.steps} steps) "
      f"in {run_dir} on {jax.device_count()} device(s), {jax.process_count()} process(es)")
  res = loop.train(cfg, run_dir, progress=not args.no_progress)
  if not main:
    return 0
  print(loop.format_table([dict(name=_name(args.config), **res.summary)]))
  print(f"metrics:     {run_dir / 'metrics.jsonl'}")
  if res.plot:
    print(f"loss curve:  {res.plot}")
  if res.samples:
    print(f"samples:     {res.samples}")
    print(f"more:        jaxrnn sample {run_dir} --prompt 'import ' --temperature 0.7")
  return 0


def _eval(args) -> int:
  print(json.dumps(loop.evaluate_run(args.run_dir)))
  return 0


def _sample(args) -> int:
  run, state = loop.restore(args.run_dir)
  try:
    text = loop.sample_text(run, state.params, prompt=args.prompt, length=args.length, seed=args.seed,
                            temperature=args.temperature, top_k=args.top_k)
  except ValueError as e:  # not a charlm run, an empty prompt
    print(f"jaxrnn sample: error: {e}", file=sys.stderr)
    return 2
  print(text)
  return 0


def _compare(args) -> int:
  cfgs = [(_name(c), config_lib.load(c, args.overrides)) for c in args.configs]  # validate all before training
  names = [n for n, _ in cfgs]
  if len(set(names)) != len(names):
    raise ConfigError(f"compare needs configs with distinct file names, got {names}")
  out = pathlib.Path(args.out)
  curves, summaries, baselines = {}, [], set()
  for name, cfg in cfgs:
    print(f"== {name}: {cfg.task.name}/{cfg.model.cell}")
    res = loop.train(cfg, out / name, progress=not args.no_progress, plot=False)
    curves[name] = loop._read_metrics(out / name / "metrics.jsonl", res.summary["steps"])
    summaries.append(dict(name=name, **res.summary))
    baselines.add((res.summary["baseline"], res.summary["metric"]))
  baseline, metric = next(iter(baselines)) if len(baselines) == 1 else (None, "loss")
  plot = loop.plot_curves(curves, out / "compare.png", baseline=baseline, metric=metric)
  table = loop.format_table(summaries)
  (out / "compare.md").write_text("```\n" + table + "\n```\n")
  print(table)
  print(f"plot:  {plot}\ntable: {out / 'compare.md'}")
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point of the ``jaxrnn`` command; returns the exit status (2 for a bad config or argument)."""
  args = _parser().parse_args(argv)
  try:
    return {"train": _train, "eval": _eval, "sample": _sample, "compare": _compare}[args.command](args)
  except (ConfigError, FileNotFoundError) as e:
    print(f"jaxrnn {args.command}: error: {e}", file=sys.stderr)
    return 2
  except (FloatingPointError, OSError) as e:  # a NaN/Inf step; a damaged checkpoint or a failed write (full disk)
    print(f"jaxrnn {args.command}: error: {e}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    return 130


if __name__ == "__main__":
  sys.exit(main())
