"""Tasks with embedded or generated data (nothing is ever downloaded).

A :class:`Task` bundles its data splits (arrays, possibly empty), a pure ``batch`` function and a pure ``loss``,
so that drawing a batch is part of the jitted train step and depends only on ``(seed, step)``. Row ``r`` of a
batch is drawn on its own, from ``fold_in(key, r)`` (:func:`batch_rows`), so that each process of a data-parallel
run draws only the rows its devices own and the global batch is the same on any number of devices.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp


class Task(NamedTuple):
  """A supervised sequence task.

  Fields:
    name: the task's name.
    input_vocab: number of input tokens (inputs are ``int32[B, T]`` and get embedded), or ``None`` for real
      inputs ``[B, T, input_size]``.
    input_size: features per step for real inputs (ignored for token inputs).
    output_size: readout width (classes, or 1 for regression).
    readout: ``"last"`` (one output per sequence, from the last step), ``"all"`` (one per step) or ``"seq2seq"``
      (an encoder-decoder: :func:`jaxrnn.train.model.make_seq2seq_model`).
    data: ``{"train": pytree, "val": pytree}`` of arrays handed to ``batch`` (``()`` for generated tasks).
    batch: ``batch(data, key, batch_size) -> (inputs, targets)``, pure and jittable; from :func:`make_task`,
      ``batch_rows(data, key, arange(batch_size))``.
    loss: ``loss(outputs, targets) -> scalar`` (mean over the batch).
    metric: name of the loss (``"mse"``, ``"xent"``; charlm's xent is in nats per character).
    baseline: the loss of the task's trivial baseline (the adding problem's always-1, the copy task's memoryless
      guess, charlm's unigram entropy of the training split).
    rows: ``rows(data, key, rows int[R]) -> (inputs, targets)``: rows ``rows`` of ``batch(data, key, B)`` (any
      ``B`` above them), drawn without the others (set by :func:`make_task`).
  """

  name: str
  input_vocab: Optional[int]
  input_size: int
  output_size: int
  readout: str
  data: Any
  batch: Callable
  loss: Callable
  metric: str
  baseline: float
  rows: Optional[Callable] = None


def batch_rows(batch: Callable, data: Any, key: jax.Array, rows: jax.Array) -> Any:
  """Rows ``rows`` of a batch whose row ``r`` is ``batch(data, fold_in(key, r), 1)``: ``[R, ...]`` leaves."""
  one = lambda r: jax.tree_util.tree_map(lambda a: a[0], batch(data, jax.random.fold_in(key, r), 1))
  return jax.vmap(one)(jnp.asarray(rows))


def _by_rows(task: Task) -> Task:
  raw = task.batch
  rows = lambda data, key, r: batch_rows(raw, data, key, r)
  return task._replace(batch=lambda data, key, batch_size: rows(data, key, jnp.arange(batch_size)), rows=rows)


def make_task(cfg) -> Task:
  """Builds the task named by a :class:`jaxrnn.train.config.TaskConfig` (its batches drawn row by row)."""
  return _by_rows(_make(cfg))


def _make(cfg) -> Task:
  if cfg.name == "adding":
    from jaxrnn.train.tasks import adding
    return adding.task(cfg.seq_len)
  if cfg.name == "copy":
    from jaxrnn.train.tasks import copy
    return copy.task(cfg.seq_len)
  if cfg.name == "charlm":
    from jaxrnn.train.tasks import charlm
    return charlm.task(cfg.seq_len, corpus_chars=cfg.corpus_chars, val_fraction=cfg.val_fraction)
  if cfg.name in ("reverse", "sort"):
    from jaxrnn.train.tasks import digits
    return digits.task(cfg.name, cfg.seq_len, cfg.min_len)
  raise ValueError(f"task.name must be one of adding, copy, charlm, reverse, sort, got {cfg.name!r}")
