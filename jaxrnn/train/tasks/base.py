"""The :class:`Task` value every task module builds, and row-by-row batch drawing (:func:`batch_rows`)."""

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
