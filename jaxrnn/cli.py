"""The ``jaxrnn`` command: ``train``, ``eval``, ``sample`` and ``compare`` (see ``jaxrnn --help``).

Usage::

  jaxrnn train [CONFIG] [--set section.key=value ...] [--run-dir DIR]   # resumes if DIR has checkpoints
  jaxrnn train CONFIG --run-dir DIR --set train.steps=N --extend          # continue a finished run
  jaxrnn train [CONFIG] --coordinator-address HOST:PORT --num-processes N --process-id I   # one per process
  jaxrnn eval RUN_DIR
  jaxrnn sample RUN_DIR [--prompt TEXT] [--length N] [--temperature T] [--top-k K] [--seed S]
  jaxrnn compare CONFIG[@section.key=value...]|RUN_DIR ... [--set ...] [--out DIR]
  jaxrnn list

CONFIG is a TOML file or the name of a config shipped with the package (``jaxrnn list`` prints them).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Optional, Sequence

import jax

from jaxrnn.train import cells, distributed, loop, report, rundir, sampling, tasks
from jaxrnn.train import config as config_lib
from jaxrnn.train import model as model_lib
from jaxrnn.train.config import ConfigError
from jaxrnn.train.fields import describe


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="jaxrnn", description="Train, evaluate, sample and compare recurrent models.")
  sub = p.add_subparsers(dest="command", required=True)

  t = sub.add_parser("train", help="train a config (default: a character-level LSTM on Python's stdlib source)")
  t.add_argument("config", nargs="?",
                 help="a TOML config file, or the name of a shipped config (jaxrnn list); none: the default config")
  t.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                 help="override a config value, e.g. --set optimizer.lr=3e-4 (repeatable)")
  t.add_argument("--run-dir", help="run directory (default: runs/<config name>); an existing one is resumed")
  t.add_argument("--extend", action="store_true",
                 help="continue the run in --run-dir with more steps (train.steps) or another learning-rate "
                      "schedule, resuming its optimizer state")
  t.add_argument("--no-progress", action="store_true", help="no progress bar")
  d = t.add_argument_group("multi-process runs (one command per process; all devices of one process need none)")
  d.add_argument("--coordinator-address", metavar="HOST:PORT",
                 help="process 0's host and a free port, the same on every process (or $JAX_COORDINATOR_ADDRESS)")
  d.add_argument("--num-processes", type=int, metavar="N", help="number of processes")
  d.add_argument("--process-id", type=int, metavar="I", help="this process's index, 0..N-1")
  d.add_argument("--distributed", action="store_true",
                 help="join a multi-process run detected from the environment (Cloud TPU pod, SLURM, Open MPI, "
                      "Kubernetes) with jax.distributed.initialize()")

  e = sub.add_parser("eval", help="held-out loss and metrics of a run's latest checkpoint")
  e.add_argument("run_dir", help="a run directory (made by jaxrnn train)")

  s = sub.add_parser("sample", help="sample text from a run of a text task (charlm)")
  s.add_argument("run_dir", help="a run directory of a text task")
  s.add_argument("--prompt", default="def ", help="the text to continue (default: %(default)r)")
  s.add_argument("--length", type=int, default=400, help="characters to sample (default: %(default)s)")
  s.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 = greedy (default: "
                                                                 "%(default)s)")
  s.add_argument("--top-k", type=int, default=0, help="sample among the k most likely characters (0 = all)")
  s.add_argument("--seed", type=int, default=0, help="sampling seed: the same seed gives the same text")

  c = sub.add_parser("compare", help="train several configs (or read finished runs) into one plot and table")
  c.add_argument("items", nargs="+", metavar="CONFIG|RUN_DIR",
                 help="a config file or shipped config name, with per-config overrides appended as "
                      "@section.key=value (repeatable: adding_gru@model.cell=lstm@train.steps=500), or an existing "
                      "run directory (summarised as it is, not trained)")
  c.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                 help="override a value of every config (not of run directories); repeatable")
  c.add_argument("--out", default="runs/compare", help="directory for the runs, compare.png and compare.md")
  c.add_argument("--no-progress", action="store_true", help="no progress bars")

  sub.add_parser("list", help="the tasks (with their config keys), cells, attention mechanisms and shipped configs")
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
  res = loop.train(cfg, run_dir, extend=args.extend, progress=not args.no_progress, log=say)
  if main:
    print(report.format_table([dict(name=_name(args.config), **res.summary)]))
    print(f"metrics:        {run_dir / 'metrics.jsonl'}")
    for label, path in res.files.items():
      print(f"{label + ':':<16}{path}")
    if res.samples:
      print(f"more:           jaxrnn sample {run_dir} --prompt 'import ' --temperature 0.7")
  distributed.shutdown()  # every process leaves a multi-process run together (a barrier)
  return 0


def _eval(args) -> int:
  print(json.dumps(loop.evaluate_run(args.run_dir)))
  return 0


def _sample(args) -> int:
  run, state = loop.restore(args.run_dir)
  try:
    text = sampling.sample_text(run, state.params, prompt=args.prompt, length=args.length, seed=args.seed,
                                temperature=args.temperature, top_k=args.top_k)
  except ValueError as e:  # not a charlm run, an empty prompt
    print(f"jaxrnn sample: error: {e}", file=sys.stderr)
    return 2
  print(text)
  return 0


def _summary_of_run_dir(run_dir: pathlib.Path) -> tuple:
  """``(cfg, summary, rows)`` of an existing run directory, read from its files (nothing is trained)."""
  cfg = rundir.load_config(run_dir)
  rows = rundir.read_metrics(run_dir)
  task = tasks.make_task(cfg.task)
  m = model_lib.make_model(cfg.model, task)
  params = model_lib.count_params(jax.eval_shape(m.init, jax.random.key(0)))
  done = max((r["step"] for r in rows), default=0)
  summary = report.summarize(cfg, rows, params=params, baseline=task.baseline, metric=task.metric, steps=done,
                             seconds=None, steps_run=0)
  summary.update(tasks.references(cfg.task))
  return cfg, summary, rows


def _compare(args) -> int:
  items: list = []  # (name, cfg or None, run_dir): validate every config before training any
  for item in args.items:
    if (pathlib.Path(item) / "config.json").is_file():
      items.append((pathlib.Path(item).name, None, pathlib.Path(item)))
      continue
    base, *local = item.split("@")
    cfg = config_lib.load(base, list(args.overrides) + local)
    name = _name(base) + "".join(f"@{o}" for o in local).replace("/", "_")
    items.append((name, cfg, pathlib.Path(args.out) / name))
  names = [n for n, _, _ in items]
  if len(set(names)) != len(names):
    raise ConfigError(f"compare needs distinct names (config file names, run directory names), got {names}")
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  curves, summaries, baselines = {}, [], set()
  for name, cfg, run_dir in items:
    if cfg is None:
      print(f"== {name}: run directory {run_dir}")
      cfg, summary, rows = _summary_of_run_dir(run_dir)
    else:
      print(f"== {name}: {cfg.task.name}/{cfg.model.cell}")
      res = loop.train(cfg, run_dir, progress=not args.no_progress, plot=False)
      summary, rows = res.summary, rundir.read_metrics(run_dir, res.summary["steps"])
    curves[name] = rows
    summaries.append(dict(name=name, **summary))
    baselines.add((summary["baseline"], summary["metric"]))
  baseline, metric = next(iter(baselines)) if len(baselines) == 1 else (None, "loss")
  plot = report.plot_curves(curves, out / "compare.png", baseline=baseline, metric=metric)
  table = report.format_table(summaries)
  (out / "compare.md").write_text("```\n" + table + "\n```\n")
  print(table)
  print(f"plot:  {plot}\ntable: {out / 'compare.md'}")
  return 0


def _list(args) -> int:
  del args
  print("tasks (task.name; the [task] keys each one owns):")
  for name, spec in tasks.TASKS.items():
    print(f"  {name:<16}{spec.about}")
    for key, default, text in describe(spec.config, "task")[1:]:
      print(f"      {key} = {default!r}  {text}")
  print("\ncells (model.cell):\n  " + ", ".join(cells.CELLS))
  print("\nattention (model.attention, seq2seq tasks):\n  " + ", ".join(cells.ATTENTION))
  print("\nshipped configs (jaxrnn train NAME):")
  for name, path in config_lib.named_configs().items():
    cfg = config_lib.load(path)
    print(f"  {name:<30}{cfg.task.name}/{cfg.model.cell}, {cfg.train.steps} steps")
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point of the ``jaxrnn`` command; returns the exit status (2 for a bad config or argument)."""
  args = _parser().parse_args(argv)
  try:
    return {"train": _train, "eval": _eval, "sample": _sample, "compare": _compare,
            "list": _list}[args.command](args)
  except (ConfigError, FileNotFoundError, ImportError) as e:  # ImportError: a task's extra is not installed
    print(f"jaxrnn {args.command}: error: {e}", file=sys.stderr)
    return 2
  except (FloatingPointError, OSError) as e:  # a NaN/Inf step; a damaged checkpoint or a failed write (full disk)
    print(f"jaxrnn {args.command}: error: {e}", file=sys.stderr)
    return 1
  except KeyboardInterrupt:
    return 130


if __name__ == "__main__":
  sys.exit(main())
