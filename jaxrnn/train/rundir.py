"""A run directory: its ``config.json`` (and the check that a resumed or extended run is the same run), its
``metrics.jsonl`` rows and its checkpoints (:mod:`jaxrnn.train.checkpoint`).

``metrics.jsonl`` holds one JSON object a line: ``{"step", "split": "train" | "eval", "loss"}``, held-out metrics
as ``{"step", "split": "eval", "metric": name, "value"}``, a skipped non-finite step as ``{"step", "split":
"skipped", "loss": null}``.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Optional

from jaxrnn.train import config as config_lib
from jaxrnn.train import tasks

# Keys that may differ when a run resumes: they change how it is logged and saved, not what it computes.
FREE_KEYS = {"train": ("log_every", "eval_every", "eval_batches", "checkpoint_every", "keep_checkpoints",
                       "on_nonfinite")}
FREE_SECTIONS = ("distributed",)  # a run may resume on another number of devices
# Keys that may differ with `extend` (``jaxrnn train --extend``): more steps and the learning-rate schedule over
# them; the optimizer state (moments, step count) carries on.
EXTEND_KEYS = {"train": ("steps",), "optimizer": ("lr", "schedule", "warmup_steps", "end_lr_fraction")}


def check_same_run(saved: dict, cfg: config_lib.Config, run_dir: pathlib.Path, *, extend: bool = False,
                   at_step: Optional[int] = None) -> list:
  """Raises :class:`ConfigError` unless ``cfg`` may resume the run saved as ``saved`` (its ``config.json``).

  Args:
    saved: the run directory's config as a dict.
    cfg: the config asked for now.
    run_dir: for messages.
    extend: allow :data:`EXTEND_KEYS` to change (``train.steps`` not below ``at_step``).
    at_step: the step of the run's latest checkpoint.

  Returns:
    ``["section.key: old -> new", ...]``, the extended keys that changed.
  """
  changed = []
  for section, values in cfg.to_dict().items():
    if section in FREE_SECTIONS:
      continue
    for key, value in values.items():
      if key in FREE_KEYS.get(section, ()):
        continue
      old = saved.get(section, {}).get(key)
      if old == value:
        continue
      if extend and key in EXTEND_KEYS.get(section, ()):
        changed.append(f"{section}.{key}: {old!r} -> {value!r}")
        continue
      hint = ""
      if key in EXTEND_KEYS.get(section, ()):
        hint = "; to continue this run with it, pass --extend (train(..., extend=True))"
      raise config_lib.ConfigError(
          f"{run_dir} holds a run with {section}.{key} = {old!r}, not {value!r}; resuming needs the same config"
          f"{hint}; or choose another run directory, or delete {run_dir}")
  if extend and at_step is not None and cfg.train.steps < at_step:
    raise config_lib.ConfigError(f"train.steps = {cfg.train.steps} is below step {at_step}, where {run_dir} "
                                 f"already is; --extend continues a run to more steps")
  return changed


def write_config(run_dir: pathlib.Path, cfg: config_lib.Config) -> None:
  """Writes ``config.json`` atomically (other processes never read a partial file)."""
  path = run_dir / "config.json"
  path.with_suffix(".tmp").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
  path.with_suffix(".tmp").replace(path)


def saved_config(run_dir: str | pathlib.Path) -> Optional[dict]:
  """The raw ``config.json`` of a run directory, or ``None`` if it has none."""
  path = pathlib.Path(run_dir) / "config.json"
  return json.loads(path.read_text()) if path.is_file() else None


def load_config(run_dir: str | pathlib.Path) -> config_lib.Config:
  """The config a run directory was trained with (``config.json``)."""
  raw = saved_config(run_dir)
  if raw is None:
    raise FileNotFoundError(f"{run_dir} is not a run directory (no config.json)")
  # Run directories written before tasks owned their keys hold every task's keys in [task] (validated when they
  # were written): the keys the task does not own are dropped.
  task = dict(raw.get("task", {}))
  name = task.get("name", config_lib.DEFAULT_TASK)
  if name in tasks.TASKS:
    owned = {f.name for f in dataclasses.fields(tasks.TASKS[name].config)}
    raw = {**raw, "task": {k: v for k, v in task.items() if k in owned}}
  return config_lib.from_dict(raw)


def read_metrics(run_dir: str | pathlib.Path, upto: Optional[int] = None) -> list:
  """The rows of ``metrics.jsonl`` (those up to step ``upto``)."""
  path = pathlib.Path(run_dir) / "metrics.jsonl"
  if not path.is_file():
    return []
  rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
  return rows if upto is None else [r for r in rows if r["step"] <= upto]


def write_metrics(run_dir: pathlib.Path, rows: list) -> None:
  """Replaces ``metrics.jsonl`` with ``rows``, atomically."""
  path = pathlib.Path(run_dir) / "metrics.jsonl"
  tmp = path.with_suffix(".tmp")
  tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
  tmp.replace(path)
