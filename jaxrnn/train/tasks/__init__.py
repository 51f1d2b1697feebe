"""Tasks with embedded or generated data (nothing is ever downloaded).

A :class:`Task` bundles its data splits (arrays, possibly empty), a pure ``batch`` function and a pure ``loss``,
so that drawing a batch is part of the jitted train step and depends only on ``(seed, step)``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional


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
    batch: ``batch(data, key, batch_size) -> (inputs, targets)``, pure and jittable.
    loss: ``loss(outputs, targets) -> scalar`` (mean over the batch).
    metric: name of the loss (``"mse"``, ``"xent"``; charlm's xent is in nats per character).
    baseline: the loss of the task's trivial baseline (the adding problem's always-1, the copy task's memoryless
      guess, charlm's unigram entropy of the training split).
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


def make_task(cfg) -> Task:
  """Builds the task named by a :class:`jaxrnn.train.config.TaskConfig`."""
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
