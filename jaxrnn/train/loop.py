"""The training driver: train a config in a run directory (with exact resume, and ``extend`` to more steps),
restore a run, evaluate it.

Every step's batch and dropout key are ``fold_in(key(seed), step)``-derived, and the batch is drawn inside the
jitted train step, so a run resumed from a checkpoint computes exactly what an uninterrupted run computes; the
train-loss window not yet logged is saved with each checkpoint, so its ``metrics.jsonl`` is the same row for row.
The pieces live in their own modules: the step (:mod:`jaxrnn.train.step`), the run directory
(:mod:`jaxrnn.train.rundir`), checkpoints (:mod:`jaxrnn.train.checkpoint`), reports (:mod:`jaxrnn.train.report`).

>>> from jaxrnn.train import config, step
>>> cfg = config.from_dict({"task": {"name": "adding", "seq_len": 4}, "model": {"hidden_size": 3},
...                         "train": {"batch_size": 2, "steps": 2}})
>>> run = step.build(cfg)
>>> state, loss = run.train_step(run.init_state(), run.task.data["train"])
>>> int(state.step), loss.shape
(1, ())
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import sys
import time
from typing import Callable, Optional, Tuple

import jax
import jax.numpy as jnp

from jaxrnn import _optional
from jaxrnn.train import config as config_lib
from jaxrnn.train import model as model_lib
from jaxrnn.train import report, rundir, tasks
from jaxrnn.train.checkpoint import Checkpointer
from jaxrnn.train.distributed import Parallel, parallelize
from jaxrnn.train.step import Run, TrainState, build

__all__ = ["Result", "Run", "TrainState", "build", "evaluate_run", "restore", "train"]


def _check_finite(unchecked: list, policy: str, skipped: list) -> list:
  """Host-side check of ``[(step, loss)]``: the finite losses; non-finite steps are added to ``skipped`` (policy
  ``"skip"``) or raise ``FloatingPointError`` naming the first one (``"stop"``)."""
  if not unchecked:
    return []
  values = jax.device_get(jnp.stack([l for _, l in unchecked]))
  good = []
  for (s, _), v in zip(unchecked, values.tolist()):
    if math.isfinite(v):
      good.append(v)
    elif policy == "skip":
      skipped.append(s)
    else:
      raise FloatingPointError(
          f"non-finite loss or gradient (loss = {v}) at step {s}; training stopped without applying that update "
          f"and no checkpoint was written after it. Lower optimizer.lr or optimizer.clip_norm, or set "
          f'train.on_nonfinite = "skip" to skip such steps, and run the same command again to resume')
  return good


@dataclasses.dataclass
class Result:
  """What :func:`train` returns and prints as its summary.

  Fields:
    run_dir: the run directory.
    state: the final :class:`TrainState`.
    summary: :func:`jaxrnn.train.report.summarize`'s dict.
    files: ``{label: path}`` of the files written at the end (loss curve, the task's extras).
  """

  run_dir: str
  state: TrainState
  summary: dict
  files: dict

  @property
  def plot(self) -> Optional[str]:
    return self.files.get("loss curve")

  @property
  def samples(self) -> Optional[str]:
    return self.files.get("samples")


def train(cfg: config_lib.Config, run_dir: str | pathlib.Path, *, run: Optional[Run] = None,
          parallel: Optional[Parallel] = None, extend: bool = False, progress: bool = True,
          stop_at: Optional[int] = None, plot: bool = True, log: Callable[[str], None] = print) -> Result:
  """Trains ``cfg`` in ``run_dir``, resuming from its latest checkpoint if there is one.

  Writes ``config.json``, ``metrics.jsonl`` (:mod:`jaxrnn.train.rundir`), ``checkpoints/`` (orbax), and at the end
  ``loss_curve.png`` and the task's extras (charlm: ``samples.txt``; classifiers: ``confusion.json`` and
  ``confusion.png``).

  On several devices or processes the step runs data-parallel (:mod:`jaxrnn.train.distributed`, config section
  ``[distributed]``); every process calls ``train`` with the same arguments, all take part in checkpointing,
  and only process 0 writes the other files.

  Args:
    cfg: the config.
    run_dir: the run directory (created if needed).
    run: ``step.build(cfg)`` built by the caller, to train and resume in one process without compiling again
      (default: built here).
    parallel: ``distributed.parallelize(run)`` built by the caller, for the same reason (default: built here).
    extend: continue a run whose ``train.steps`` or learning-rate schedule differs from ``cfg``'s (more steps;
      the optimizer state carries on, the schedule is ``cfg``'s over ``cfg.train.steps``).
    progress: show a tqdm progress bar (loss, steps/s).
    stop_at: stop after this step (with a checkpoint) as if the run were killed there; for tests.
    plot: draw ``loss_curve.png`` and the task's plots at the end.
    log: where messages go.

  Returns:
    A :class:`Result`.

  Raises:
    ConfigError: ``run_dir`` holds another run (or, with ``extend``, one already past ``train.steps``).
  """
  run_dir = pathlib.Path(run_dir)
  run_dir.mkdir(parents=True, exist_ok=True)
  saved = rundir.saved_config(run_dir)
  tc = cfg.train
  ckpt = Checkpointer(run_dir, tc.keep_checkpoints)
  start = ckpt.latest_step()
  if saved is not None:
    changed = rundir.check_same_run(saved, cfg, run_dir, extend=extend, at_step=start)
    if changed:
      log(f"extending {run_dir}: {'; '.join(changed)}")
  if run is None:
    run = build(cfg)
  elif run.cfg != cfg:
    raise ValueError("train(cfg, run=...) needs the run built from this cfg (step.build(cfg))")
  par = parallelize(run) if parallel is None else parallel  # one device, one process: run.train_step itself
  main = par.is_main
  if main and (saved is None or saved != cfg.to_dict()):
    rundir.write_config(run_dir, cfg)
  pending = []  # finite train losses of the current log window, not yet logged
  if start is None:
    state = par.init_state()
  else:
    state = ckpt.restore(par.restore_target(), start)
    pending = list(ckpt.extra(start).get("window", []))
    if main:
      log(f"resuming {run_dir} from step {start}")
  start = int(par.local(state.step))
  rows = rundir.read_metrics(run_dir, start)
  if main:
    rundir.write_metrics(run_dir, rows)
  train_data, val_data = run.task.data["train"], run.task.data["val"]
  end = tc.steps if stop_at is None else min(tc.steps, stop_at)
  metrics_path = run_dir / "metrics.jsonl"

  bar = None
  if progress and start < end and main:
    try:
      from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top (optional, imported when a bar is drawn)
    except ImportError as e:
      raise _optional.missing("jaxrnn.train's progress bar", "tqdm", "train") from e
    bar = tqdm(total=tc.steps, initial=start, unit="step", dynamic_ncols=True, file=sys.stderr,
               desc=f"{cfg.task.name}/{cfg.model.cell}")
  t0 = time.perf_counter()
  unchecked, skipped = [], []  # [(step, loss)] not yet checked for NaN/Inf; steps skipped as non-finite
  step = start
  with (metrics_path.open("a") if main else open(os.devnull, "w")) as mf:
    def write(row):
      rows.append(row)
      mf.write(json.dumps(row) + "\n")

    def check():
      nonlocal unchecked
      n_skipped = len(skipped)
      pending.extend(_check_finite(unchecked, tc.on_nonfinite, skipped))
      unchecked = []
      for s in skipped[n_skipped:]:
        write({"step": s, "split": "skipped", "loss": None})
      if len(skipped) > n_skipped:
        log(f"skipped {len(skipped) - n_skipped} step(s) with a non-finite loss or gradient: "
            f"{skipped[n_skipped:]} (train.on_nonfinite = 'skip')")

    def save():
      ckpt.save(step, state, extra={"window": list(pending)})

    try:
      while step < end:
        state, loss = par.train_step(state, train_data)
        step += 1
        unchecked.append((step, loss))
        log_now = step % tc.log_every == 0 or step == tc.steps
        if log_now or step % tc.checkpoint_every == 0 or step == end:  # checked before every checkpoint
          check()
        if log_now and pending:
          value = sum(pending) / len(pending)
          pending.clear()
          write({"step": step, "split": "train", "loss": value})
          if bar is not None:
            bar.set_postfix(loss=f"{value:.4f}", refresh=False)
        if step % tc.eval_every == 0 or step == tc.steps:
          write({"step": step, "split": "eval", "loss": float(run.evaluate(par.local(state.params), val_data))})
          if bar is not None:
            bar.set_postfix(eval=f"{rows[-1]['loss']:.4f}", refresh=False)
          if run.eval_metrics is not None:
            for name, value in run.eval_metrics(par.local(state.params), val_data).items():
              write({"step": step, "split": "eval", "metric": name, "value": float(value)})
        mf.flush()
        if step % tc.checkpoint_every == 0 or step == end:
          save()
        if bar is not None:
          bar.update(1)
    except KeyboardInterrupt:
      if step > start and ckpt.latest_step() != step and int(par.local(state.step)) == step:
        check()
        save()
      log(f"\ninterrupted at step {step}; checkpoint saved, run the same command again to resume")
      raise
    finally:
      if bar is not None:
        bar.close()
      ckpt.close()
  seconds = time.perf_counter() - t0

  params = model_lib.count_params(jax.eval_shape(run.model.init, jax.random.key(0)))
  summary = report.summarize(cfg, rows, params=params, baseline=run.task.baseline, metric=run.task.metric,
                             steps=step, seconds=seconds, steps_run=step - start)
  summary["skipped_steps"] = len(skipped)
  summary.update(tasks.references(cfg.task))
  spec = tasks.spec(cfg.task.name)
  files = {}
  if step >= tc.steps and main:
    if plot:
      files["loss curve"] = str(report.plot_curves({f"{cfg.task.name}/{cfg.model.cell}": rows},
                                                   run_dir / "loss_curve.png", baseline=run.task.baseline,
                                                   metric=run.task.metric))
    if spec.finish is not None:
      files.update(spec.finish(run, par.local(state.params), run_dir, plot=plot))
  return Result(str(run_dir), state, summary, files)


def restore(run_dir: str | pathlib.Path, step: Optional[int] = None, *,
            run: Optional[Run] = None) -> Tuple[Run, TrainState]:
  """``(run, state)`` of a run directory's latest (or given) checkpoint (``run``: reuse a built run)."""
  cfg = rundir.load_config(run_dir)
  run = build(cfg) if run is None else run
  ckpt = Checkpointer(run_dir, cfg.train.keep_checkpoints)
  try:
    state = ckpt.restore(run.init_state(), step)
  finally:
    ckpt.close()
  return run, state


def evaluate_run(run_dir: str | pathlib.Path) -> dict:
  """Held-out loss of a run directory's latest checkpoint: ``{"step", "metric", "eval_loss", "baseline"}``, plus
  the held-out metrics (seq2seq: ``exact_acc``, ``token_acc``; classifiers: ``accuracy``)."""
  run, state = restore(run_dir)
  loss = float(run.evaluate(state.params, run.task.data["val"]))
  out = {"step": int(state.step), "metric": run.task.metric, "eval_loss": loss, "baseline": run.task.baseline}
  if run.eval_metrics is not None:
    out.update({k: float(v) for k, v in run.eval_metrics(state.params, run.task.data["val"]).items()})
  return out
