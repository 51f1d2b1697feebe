"""Seq2seq digit tasks for ``jaxrnn train``: reverse or sort a random digit string, generated on the fly.

Tokens: ``PAD = 0``, ``BOS = 1``, ``EOS = 2``, digits ``0..9`` are tokens ``3..12`` (``VOCAB_SIZE = 13``). Batches
have fixed shapes (``max_length``) so that one jitted training step serves every batch; lengths vary.

Source lengths are uniform in ``[min_len, seq_len]``; the target is the reversed (or sorted) string followed by
``EOS``. The model is the attention encoder-decoder of :func:`jaxrnn.train.model.make_seq2seq_model`; its loss is
the cross-entropy per valid target token (teacher forcing) and its held-out metrics are the exact-sequence and the
token accuracy of greedy decoding (:func:`sequence_accuracy`, :func:`token_accuracy`). The baseline is the
cross-entropy of a model that knows the length (and puts ``EOS`` right) but guesses the digits uniformly:
``log(10) E[L] / (E[L] + 1)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple, Tuple

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import sequences
from jaxrnn.attention import seq2seq as s2s
from jaxrnn.train.fields import ConfigError, field
from jaxrnn.train.tasks.base import Task, TaskConfig, TaskSpec

PAD, BOS, EOS = 0, 1, 2
FIRST_DIGIT = 3
VOCAB_SIZE = 13
KINDS = ("reverse", "sort")
"""The digit tasks: reverse or sort the source string."""


class Seq2SeqBatch(NamedTuple):
  """A batch of a digit task (``N = max_length``)."""

  src: jax.Array  # int32[B, N] digit tokens, PAD after src_lengths
  src_lengths: jax.Array  # int32[B] in [min_length, max_length]
  tgt_in: jax.Array  # int32[B, N + 1] decoder inputs under teacher forcing: BOS, target, PAD
  tgt_out: jax.Array  # int32[B, N + 1] decoder targets: target, EOS, PAD
  tgt_lengths: jax.Array  # int32[B] = src_lengths + 1 (the EOS counts)


def digit_task(key: jax.Array, batch_size: int, *, max_length: int = 40, min_length: int = 1,
               task: str = "reverse") -> Seq2SeqBatch:
  """A batch of random digit strings and their reversal (``task="reverse"``) or sorted digits (``"sort"``).

  Lengths are uniform in ``[min_length, max_length]``. Jit it with ``batch_size``, ``max_length``,
  ``min_length`` and ``task`` static.

  Example:

    >>> import jax
    >>> from jaxrnn.train.tasks import digits
    >>> b = digits.digit_task(jax.random.key(0), 2, max_length=4, min_length=3)
    >>> b.src.shape, b.tgt_in.shape
    ((2, 4), (2, 5))
    >>> n = int(b.src_lengths[0])
    >>> b.tgt_out[0, :n].tolist() == b.src[0, :n][::-1].tolist(), int(b.tgt_out[0, n]) == digits.EOS
    (True, True)
  """
  _checks.key("key", key)
  batch_size = _checks.positive_int("batch_size", batch_size)
  max_length = _checks.positive_int("max_length", max_length)
  min_length = _checks.positive_int("min_length", min_length)
  if min_length > max_length:
    raise ValueError(f"min_length must be <= max_length={max_length}, got {min_length}")
  if task not in KINDS:
    raise ValueError(f"task must be one of {KINDS}, got {task!r}")
  k_len, k_dig = jax.random.split(key)
  lengths = jax.random.randint(k_len, (batch_size,), min_length, max_length + 1, dtype=jnp.int32)
  digits = jax.random.randint(k_dig, (batch_size, max_length), FIRST_DIGIT, VOCAB_SIZE, dtype=jnp.int32)
  t = jnp.arange(max_length, dtype=jnp.int32)[None, :]
  valid = t < lengths[:, None]
  src = jnp.where(valid, digits, PAD)
  if task == "reverse":
    target = sequences.reverse_valid(src.T, lengths).T
  else:
    target = jnp.sort(jnp.where(valid, src, VOCAB_SIZE), axis=-1)
    target = jnp.where(valid, target, PAD)
  target = jnp.pad(target, ((0, 0), (0, 1)), constant_values=PAD)  # [B, N + 1]
  t1 = jnp.arange(max_length + 1, dtype=jnp.int32)[None, :]
  tgt_out = jnp.where(t1 == lengths[:, None], EOS, target)
  tgt_in = jnp.concatenate([jnp.full((batch_size, 1), BOS, jnp.int32), target[:, :-1]], axis=1)
  return Seq2SeqBatch(src=src, src_lengths=lengths, tgt_in=tgt_in, tgt_out=tgt_out, tgt_lengths=lengths + 1)


def sequence_accuracy(tokens: jax.Array, tgt_out: jax.Array, tgt_lengths: jax.Array) -> jax.Array:
  """Fraction of sequences whose first ``tgt_lengths`` predicted tokens (the EOS included) are all correct.

  Args:
    tokens: ``int[B, L]`` predictions (e.g. greedy decoding), ``L >= tgt_out.shape[1]`` or equal.
    tgt_out: ``int[B, N]`` targets.
    tgt_lengths: ``int[B]``.
  """
  n = tgt_out.shape[1]
  if tokens.shape[1] < n:
    raise ValueError(f"tokens must have at least {n} steps (tgt_out's), got shape {tokens.shape}")
  tokens = tokens[:, :n]
  valid = jnp.arange(n)[None, :] < tgt_lengths[:, None]
  ok = jnp.all(jnp.where(valid, tokens == tgt_out, True), axis=1)
  return jnp.mean(ok.astype(jnp.float32))


def token_accuracy(tokens: jax.Array, tgt_out: jax.Array, tgt_lengths: jax.Array) -> jax.Array:
  """Fraction of the valid target tokens (the EOS included) that ``tokens`` predicts, over the whole batch.

  Args:
    tokens: ``int[B, L]`` predictions (e.g. greedy decoding), ``L >= tgt_out.shape[1]``.
    tgt_out: ``int[B, N]`` targets.
    tgt_lengths: ``int[B]``.

  Example:

    >>> import jax.numpy as jnp
    >>> from jaxrnn.train.tasks import digits
    >>> tgt = jnp.array([[5, 6, digits.EOS], [7, digits.EOS, 0]])
    >>> pred = jnp.array([[5, 4, digits.EOS], [7, digits.EOS, 9]])    # one wrong token; the padding is ignored
    >>> round(digits.token_accuracy(pred, tgt, jnp.array([3, 2])).item(), 4)
    0.8
  """
  n = tgt_out.shape[1]
  if tokens.shape[1] < n:
    raise ValueError(f"tokens must have at least {n} steps (tgt_out's), got shape {tokens.shape}")
  valid = jnp.arange(n)[None, :] < tgt_lengths[:, None]
  hits = jnp.sum(jnp.where(valid, tokens[:, :n] == tgt_out, False))
  return hits.astype(jnp.float32) / jnp.maximum(jnp.sum(valid), 1).astype(jnp.float32)


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
  b = digit_task(key, batch_size, max_length=max_len, min_length=min_len, task=kind)
  return (b.src, b.src_lengths, b.tgt_in), (b.tgt_out, b.tgt_lengths)


def loss(outputs: Tuple[jax.Array, jax.Array], targets: Tuple[jax.Array, jax.Array]) -> jax.Array:
  """Mean cross-entropy (nats) per valid target token of teacher-forced ``outputs = (logits, weights)``."""
  logits, weights = outputs
  tgt_out, tgt_lengths = targets
  return s2s.sequence_loss(logits, weights, tgt_out, tgt_lengths, tgt_lengths - 1)


def task(kind: str, max_len: int, min_len: int = 1) -> Task:
  """The ``reverse`` or ``sort`` task on digit strings of ``min_len..max_len`` digits."""
  if kind not in KINDS:
    raise ValueError(f"task.name must be one of {KINDS} for a digit task, got {kind!r}")
  if not 1 <= min_len <= max_len:
    raise ValueError(f"task.min_len = {min_len} must be in [1, task.seq_len = {max_len}]")
  mean_len = (min_len + max_len) / 2
  return Task(name=kind, input_vocab=VOCAB_SIZE, input_size=0, output_size=VOCAB_SIZE,
              readout="seq2seq", data={"train": (), "val": ()},
              batch=lambda d, k, b: batch(d, k, b, max_len=max_len, min_len=min_len, kind=kind), loss=loss,
              metric="xent", baseline=math.log(10) * mean_len / (mean_len + 1))


TASKS = tuple(TaskSpec(kind, Config, lambda cfg: task(cfg.name, cfg.seq_len, cfg.min_len), readout="seq2seq",
                       check=check, about=f"seq2seq: {kind} a digit string of min_len..seq_len digits (attention)")
              for kind in KINDS)
