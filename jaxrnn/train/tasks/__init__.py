"""Tasks with embedded or generated data (nothing is ever downloaded).

A :class:`Task` bundles its data splits (arrays, possibly empty), a pure ``batch`` function and a pure ``loss``,
so that drawing a batch is part of the jitted train step and depends only on ``(seed, step)``. Row ``r`` of a
batch is drawn on its own, from ``fold_in(key, r)`` (:func:`batch_rows`), so that each process of a data-parallel
run draws only the rows its devices own and the global batch is the same on any number of devices.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxrnn.train.tasks import adding, charlm, copy, digits
from jaxrnn.train.tasks.base import Task, batch_rows

__all__ = ["Task", "batch_rows", "make_task", "adding", "charlm", "copy", "digits"]


def _by_rows(task: Task) -> Task:
  raw = task.batch
  rows = lambda data, key, r: batch_rows(raw, data, key, r)
  return task._replace(batch=lambda data, key, batch_size: rows(data, key, jnp.arange(batch_size)), rows=rows)


def make_task(cfg) -> Task:
  """Builds the task named by a :class:`jaxrnn.train.config.TaskConfig` (its batches drawn row by row)."""
  return _by_rows(_make(cfg))


def _make(cfg) -> Task:
  if cfg.name == "adding":
    return adding.task(cfg.seq_len)
  if cfg.name == "copy":
    return copy.task(cfg.seq_len)
  if cfg.name == "charlm":
    return charlm.task(cfg.seq_len, corpus_chars=cfg.corpus_chars, val_fraction=cfg.val_fraction)
  if cfg.name in ("reverse", "sort"):
    return digits.task(cfg.name, cfg.seq_len, cfg.min_len)
  raise ValueError(f"task.name must be one of adding, copy, charlm, reverse, sort, got {cfg.name!r}")
