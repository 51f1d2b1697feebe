"""Seq2seq digit tasks for ``jaxrnn train``: reverse or sort a random digit string (:mod:`jaxrnn.attention.tasks`).

Source lengths are uniform in ``[min_len, seq_len]``; the target is the reversed (or sorted) string followed by
``EOS``. The model is the attention encoder-decoder of :func:`jaxrnn.train.model.make_seq2seq_model`; its loss is
the cross-entropy per valid target token (teacher forcing) and its held-out metrics are the exact-sequence and the
token accuracy of greedy decoding. The baseline is the cross-entropy of a model that knows the length (and puts
``EOS`` right) but guesses the digits uniformly: ``log(10) E[L] / (E[L] + 1)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Tuple

import jax

from jaxrnn.attention import seq2seq as s2s
from jaxrnn.attention import tasks as digit_tasks
from jaxrnn.train.fields import ConfigError, field
from jaxrnn.train.tasks.base import Task, TaskConfig, TaskSpec


@dataclasses.dataclass(frozen=True)
class Config(TaskConfig):
  """``[task]`` of ``reverse`` and ``sort``."""

  seq_len: int = field(30, min=2, help="the longest digit string")
  min_len: int = field(1, min=1, help="the shortest digit string (lengths are uniform in [min_len, seq_len])")


def check(cfg: Config) -> None:
  if cfg.min_len > cfg.seq_len:
    raise ConfigError(f"task.min_len = {cfg.min_len} must be <= task.seq_len = {cfg.seq_len}")


def batch(data: Any, key: jax.Array, batch_size: int, *, max_len: int, min_len: int,
          kind: str) -> Tuple[Tuple[jax.Array, ...], Tuple[jax.Array, jax.Array]]:
  """``(inputs, targets)``: ``inputs = (src int32[B, N], src_lengths int32[B], tgt_in int32[B, N+1])``,
  ``targets = (tgt_out int32[B, N+1], tgt_lengths int32[B])`` with ``N = max_len``."""
  del data
  b = digit_tasks.digit_task(key, batch_size, max_length=max_len, min_length=min_len, task=kind)
  return (b.src, b.src_lengths, b.tgt_in), (b.tgt_out, b.tgt_lengths)


def loss(outputs: Tuple[jax.Array, jax.Array], targets: Tuple[jax.Array, jax.Array]) -> jax.Array:
  """Mean cross-entropy (nats) per valid target token of teacher-forced ``outputs = (logits, weights)``."""
  logits, weights = outputs
  tgt_out, tgt_lengths = targets
  return s2s.sequence_loss(logits, weights, tgt_out, tgt_lengths, tgt_lengths - 1)


def task(kind: str, max_len: int, min_len: int = 1) -> Task:
  """The ``reverse`` or ``sort`` task on digit strings of ``min_len..max_len`` digits."""
  if kind not in digit_tasks.TASKS:
    raise ValueError(f"task.name must be one of {digit_tasks.TASKS} for a digit task, got {kind!r}")
  if not 1 <= min_len <= max_len:
    raise ValueError(f"task.min_len = {min_len} must be in [1, task.seq_len = {max_len}]")
  mean_len = (min_len + max_len) / 2
  return Task(name=kind, input_vocab=digit_tasks.VOCAB_SIZE, input_size=0, output_size=digit_tasks.VOCAB_SIZE,
              readout="seq2seq", data={"train": (), "val": ()},
              batch=lambda d, k, b: batch(d, k, b, max_len=max_len, min_len=min_len, kind=kind), loss=loss,
              metric="xent", baseline=math.log(10) * mean_len / (mean_len + 1))


TASKS = tuple(TaskSpec(kind, Config, lambda cfg: task(cfg.name, cfg.seq_len, cfg.min_len), readout="seq2seq",
                       check=check, about=f"seq2seq: {kind} a digit string of min_len..seq_len digits (attention)")
              for kind in digit_tasks.TASKS)
