"""The training loop as library code: build, train (with exact resume), evaluate, sample.

Every step's batch and dropout key are ``fold_in(key(seed), step)``-derived, and the batch is drawn inside the
jitted train step, so a run resumed from a checkpoint computes exactly what an uninterrupted run computes.

>>> from jaxrnn.train import config, loop
>>> cfg = config.from_dict({"task": {"name": "adding", "seq_len": 4}, "model": {"hidden_size": 3},
...                         "train": {"batch_size": 2, "steps": 2}})
>>> run = loop.build(cfg)
>>> state, loss = run.train_step(run.init_state(), run.task.data["train"])
>>> int(state.step), loss.shape
(1, ())
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import pathlib
import sys
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from jaxrnn import _optional
from jaxrnn.train import config as config_lib
from jaxrnn.train import model as model_lib
from jaxrnn.train import step as step_lib
from jaxrnn.train.checkpoint import Checkpointer
from jaxrnn.train.distributed import parallelize
from jaxrnn.train.step import Run, TrainState, guard_nonfinite, make_optimizer
from jaxrnn.train.tasks import charlm

__all__ = ["Result", "Run", "TrainState", "build", "evaluate_run", "format_table", "guard_nonfinite",
           "load_config", "make_optimizer", "plot_curves", "restore", "sample_text", "train"]

_BUILT: dict = {}  # config JSON -> Run, so that resuming in the same process does not compile again


def build(cfg: config_lib.Config) -> Run:
  """Builds the task, model, optimizer and the jitted train and eval functions of ``cfg`` (cached per config)."""
  key = json.dumps(cfg.to_dict(), sort_keys=True)
  if key not in _BUILT:
    if len(_BUILT) >= 8:
      _BUILT.pop(next(iter(_BUILT)))
    _BUILT[key] = step_lib.build_run(cfg)
  return _BUILT[key]


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


# -- run directories -------------------------------------------------------------------------------------------

_RUN_KEYS_FREE = ("log_every", "eval_every", "eval_batches", "checkpoint_every", "keep_checkpoints", "on_nonfinite")
_RUN_SECTIONS_FREE = ("distributed",)  # a run may resume on another number of devices


def _check_same_run(saved: dict, cfg: config_lib.Config, run_dir: pathlib.Path) -> None:
  now = cfg.to_dict()
  for section, values in now.items():
    if section in _RUN_SECTIONS_FREE:
      continue
    for key, value in values.items():
      if section == "train" and key in _RUN_KEYS_FREE:
        continue
      old = saved.get(section, {}).get(key)
      if old != value:
        raise config_lib.ConfigError(
            f"{run_dir} holds a run with {section}.{key} = {old!r}, not {value!r}; resuming needs the same config "
            f"(choose another --run-dir, or delete {run_dir})")


def load_config(run_dir: str | pathlib.Path) -> config_lib.Config:
  """The config a run directory was trained with (``config.json``)."""
  path = pathlib.Path(run_dir) / "config.json"
  if not path.is_file():
    raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json)")
  return config_lib.from_dict(json.loads(path.read_text()))


def _read_metrics(path: pathlib.Path, upto: int) -> list:
  if not path.is_file():
    return []
  rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
  return [r for r in rows if r["step"] <= upto]


def _write_metrics(path: pathlib.Path, rows: list) -> None:
  tmp = path.with_suffix(".tmp")
  tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
  tmp.replace(path)


@dataclasses.dataclass
class Result:
  """What :func:`train` returns and prints as its summary."""

  run_dir: str
  state: TrainState
  summary: dict
  plot: Optional[str]
  samples: Optional[str]


def train(cfg: config_lib.Config, run_dir: str | pathlib.Path, *, progress: bool = True, stop_at: Optional[int] = None,
          plot: bool = True, log: Callable[[str], None] = print) -> Result:
  """Trains ``cfg`` in ``run_dir``, resuming from its latest checkpoint if there is one.

  Writes ``config.json``, ``metrics.jsonl`` (one JSON object a line: ``{"step", "split", "loss"}``; a model's
  extra eval metrics as ``{"step", "split": "eval", "metric": name, "value"}``),
  ``checkpoints/`` (orbax), and at the end ``loss_curve.png`` and, for charlm, ``samples.txt``.

  On several devices or processes the step runs data-parallel (:mod:`jaxrnn.train.distributed`, config section
  ``[distributed]``); every process calls ``train`` with the same arguments, all take part in checkpointing,
  and only process 0 writes the other files.

  Args:
    cfg: the config.
    run_dir: the run directory (created if needed).
    progress: show a tqdm progress bar (loss, steps/s).
    stop_at: stop after this step (with a checkpoint) as if the run were killed there; for tests.
    plot: draw ``loss_curve.png`` at the end.
    log: where messages go.

  Returns:
    A :class:`Result`.
  """
  run_dir = pathlib.Path(run_dir)
  run_dir.mkdir(parents=True, exist_ok=True)
  cfg_path = run_dir / "config.json"
  if cfg_path.is_file():
    _check_same_run(json.loads(cfg_path.read_text()), cfg, run_dir)
  run = build(cfg)
  par = parallelize(run)  # one device, one process: par.train_step is run.train_step
  main = par.is_main
  if main and not cfg_path.is_file():
    cfg_path.with_suffix(".tmp").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    cfg_path.with_suffix(".tmp").replace(cfg_path)  # other processes never read a partial file
  tc = cfg.train
  ckpt = Checkpointer(run_dir, tc.keep_checkpoints)
  start = ckpt.latest_step()
  if start is None:
    state = par.init_state()
  else:
    state = ckpt.restore(par.restore_target(), start)
    if main:
      log(f"resuming {run_dir} from step {start}")
  start = int(par.local(state.step))
  metrics_path = run_dir / "metrics.jsonl"
  rows = _read_metrics(metrics_path, start)
  if main:
    _write_metrics(metrics_path, rows)
  train_data, val_data = run.task.data["train"], run.task.data["val"]
  end = tc.steps if stop_at is None else min(tc.steps, stop_at)

  bar = None
  if progress and start < end and main:
    try:
      from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top (optional, imported when a bar is drawn)
    except ImportError as e:
      raise _optional.missing("jaxrnn.train's progress bar", "tqdm", "train") from e
    bar = tqdm(total=tc.steps, initial=start, unit="step", dynamic_ncols=True, file=sys.stderr,
               desc=f"{cfg.task.name}/{cfg.model.cell}")
  t0, pending = time.perf_counter(), []
  unchecked, skipped = [], []  # [(step, loss)] not yet checked for NaN/Inf; steps skipped as non-finite
  step = start
  with (metrics_path.open("a") if main else open(os.devnull, "w")) as mf:
    def record(split, value):
      row = {"step": step, "split": split, "loss": value}
      rows.append(row)
      mf.write(json.dumps(row) + "\n")
      mf.flush()

    try:
      while step < end:
        state, loss = par.train_step(state, train_data)
        step += 1
        unchecked.append((step, loss))
        log_now = step % tc.log_every == 0 or step == end
        if log_now or step % tc.checkpoint_every == 0:  # checked before every checkpoint
          n_skipped = len(skipped)
          pending += _check_finite(unchecked, tc.on_nonfinite, skipped)
          unchecked = []
          for s in skipped[n_skipped:]:
            rows.append({"step": s, "split": "skipped", "loss": None})
            mf.write(json.dumps(rows[-1]) + "\n")
          if len(skipped) > n_skipped:
            log(f"skipped {len(skipped) - n_skipped} step(s) with a non-finite loss or gradient: "
                f"{skipped[n_skipped:]} (train.on_nonfinite = 'skip')")
        if log_now and pending:
          value = sum(pending) / len(pending)
          pending = []
          record("train", value)
          if bar is not None:
            bar.set_postfix(loss=f"{value:.4f}", refresh=False)
        if step % tc.eval_every == 0 or step == tc.steps:
          record("eval", float(run.evaluate(par.local(state.params), val_data)))
          if bar is not None:
            bar.set_postfix(loss=f"{rows[-2].get('loss', math.nan) if len(rows) > 1 else math.nan:.4f}",
                            eval=f"{rows[-1]['loss']:.4f}", refresh=False)
          if run.eval_metrics is not None:  # after the bar: rows[-2:] above are the last train and eval rows
            for name, value in run.eval_metrics(state.params, val_data).items():
              row = {"step": step, "split": "eval", "metric": name, "value": float(value)}
              rows.append(row)
              mf.write(json.dumps(row) + "\n")
            mf.flush()
        if step % tc.checkpoint_every == 0 or step == end:
          ckpt.save(step, state)
        if bar is not None:
          bar.update(1)
    except KeyboardInterrupt:
      if step > start and ckpt.latest_step() != step and int(state.step) == step:
        ckpt.save(step, state)
      log(f"\ninterrupted at step {step}; checkpoint saved, run the same command again to resume")
      raise
    finally:
      if bar is not None:
        bar.close()
      ckpt.close()
  seconds = time.perf_counter() - t0

  summary = _summary(run, rows, step, seconds, step - start)
  summary["skipped_steps"] = len(skipped)
  plot_path = samples_path = None
  if step >= tc.steps and main:
    if plot:
      plot_path = str(plot_curves({f"{cfg.task.name}/{cfg.model.cell}": rows}, run_dir / "loss_curve.png",
                                  baseline=run.task.baseline, metric=run.task.metric))
    if run.task.name == "charlm":
      samples_path = run_dir / "samples.txt"
      text = sample_text(run, par.local(state.params), prompt="def ", length=400, seed=0, temperature=0.8,
                         top_k=0)
      samples_path.write_text(text + "\n")
      samples_path = str(samples_path)
  return Result(str(run_dir), state, summary, plot_path, samples_path)


def _summary(run: Run, rows: list, step: int, seconds: float, steps_run: int) -> dict:
  train_rows = [r["loss"] for r in rows if r["split"] == "train" and "loss" in r]
  eval_rows = [r["loss"] for r in rows if r["split"] == "eval" and "loss" in r]
  extra = {r["metric"]: r["value"] for r in rows if "metric" in r}  # the last value of each model metric
  return {
      "task": run.cfg.task.name,
      "cell": run.cfg.model.cell,
      "params": model_lib.count_params(jax.eval_shape(run.model.init, jax.random.key(0))),
      "steps": step,
      "train_loss": train_rows[-1] if train_rows else float("nan"),
      "eval_loss": eval_rows[-1] if eval_rows else float("nan"),
      "best_eval": min(eval_rows) if eval_rows else float("nan"),
      "baseline": run.task.baseline,
      "metric": run.task.metric,
      "steps_per_s": steps_run / seconds if seconds > 0 and steps_run else float("nan"),
      **extra,
  }


def format_table(summaries: list) -> str:
  """A plain-text table of :func:`train` summaries, one row each."""
  cols = ["name", "task", "cell", "params", "steps", "metric", "train_loss", "eval_loss", "best_eval", "baseline",
          "steps_per_s"]
  cols += sorted({k for s in summaries for k in s if k.endswith("_acc")})  # model metrics (seq2seq accuracies)
  fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)
  table = [cols] + [[fmt(s.get(c, "")) for c in cols] for s in summaries]
  widths = [max(len(r[i]) for r in table) for i in range(len(cols))]
  lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in table]
  lines.insert(1, "  ".join("-" * w for w in widths))
  return "\n".join(lines)


def plot_curves(curves: dict, path: str | pathlib.Path, *, baseline: Optional[float] = None,
                metric: str = "loss") -> pathlib.Path:
  """Draws train (thin) and eval (thick) loss curves of ``{label: metrics rows}`` into a PNG at ``path``."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top (optional and slow to import: only for plots)
  except ImportError as e:
    raise _optional.missing("jaxrnn.train's plots", "matplotlib", "train") from e
  matplotlib.use("Agg", force=False)
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
  for i, (label, rows) in enumerate(curves.items()):
    color = f"C{i}"
    for split, kw in (("train", dict(alpha=0.45, lw=1)), ("eval", dict(lw=2, marker="o", ms=3))):
      pts = [(r["step"], r["loss"]) for r in rows if r["split"] == split and "loss" in r]
      if pts:
        ax.plot(*zip(*pts), color=color, label=f"{label} ({split})", **kw)
  if baseline is not None:
    ax.axhline(baseline, color="gray", ls="--", lw=1, label=f"baseline {baseline:.3f}")
  ax.set_xlabel("step")
  ax.set_ylabel(metric)
  ax.set_yscale("log")
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  path = pathlib.Path(path)
  fig.savefig(path)
  plt.close(fig)
  return path


# -- using a trained run ---------------------------------------------------------------------------------------

def restore(run_dir: str | pathlib.Path, step: Optional[int] = None):
  """``(run, state)`` of a run directory's latest (or given) checkpoint."""
  cfg = load_config(run_dir)
  run = build(cfg)
  ckpt = Checkpointer(run_dir, cfg.train.keep_checkpoints)
  try:
    state = ckpt.restore(run.init_state(), step)
  finally:
    ckpt.close()
  return run, state


def evaluate_run(run_dir: str | pathlib.Path) -> dict:
  """Held-out loss of a run directory's latest checkpoint: ``{"step", "metric", "eval_loss", "baseline"}``, plus
  the model's extra metrics (seq2seq: ``exact_acc``, ``token_acc``)."""
  run, state = restore(run_dir)
  loss = float(run.evaluate(state.params, run.task.data["val"]))
  out = {"step": int(state.step), "metric": run.task.metric, "eval_loss": loss, "baseline": run.task.baseline}
  if run.eval_metrics is not None:
    out.update({k: float(v) for k, v in run.eval_metrics(state.params, run.task.data["val"]).items()})
  return out


@functools.lru_cache(maxsize=8)
def _jitted_sampler(sample: Callable) -> Callable:
  """One jitted sampler per model: the temperature is traced, so changing it does not recompile."""
  return jax.jit(sample, static_argnames=("length", "top_k"))


def sample_text(run: Run, params: Any, *, prompt: str = "def ", length: int = 400, seed: int = 0,
                temperature: float = 1.0, top_k: int = 0) -> str:
  """Samples ``length`` characters after ``prompt`` from a charlm model; deterministic for a ``seed``."""
  if run.task.name != "charlm":
    raise ValueError(f"sampling needs a charlm run, this one is {run.task.name!r}")
  ids = charlm.encode(prompt)
  if ids.size == 0:
    raise ValueError("prompt must hold at least one ASCII character")
  fn = _jitted_sampler(run.model.sample)
  toks = fn(params, ids, length=int(length), key=jax.random.key(seed), temperature=float(temperature),
            top_k=int(top_k))
  return prompt + charlm.decode(toks)
