"""Synthetic sequence-to-sequence digit tasks that need attention, generated on the fly (reverse, sort).

Tokens: ``PAD = 0``, ``BOS = 1``, ``EOS = 2``, digits ``0..9`` are tokens ``3..12`` (``VOCAB_SIZE = 13``). Batches
have fixed shapes (``max_length``) so that one jitted training step serves every batch; lengths vary.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import sequences

PAD, BOS, EOS = 0, 1, 2
FIRST_DIGIT = 3
VOCAB_SIZE = 13
TASKS = ("reverse", "sort")


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
    >>> from jaxrnn.attention import tasks
    >>> b = tasks.digit_task(jax.random.key(0), 2, max_length=4, min_length=3)
    >>> b.src.shape, b.tgt_in.shape
    ((2, 4), (2, 5))
    >>> n = int(b.src_lengths[0])
    >>> b.tgt_out[0, :n].tolist() == b.src[0, :n][::-1].tolist(), int(b.tgt_out[0, n]) == tasks.EOS
    (True, True)
  """
  _checks.key("key", key)
  batch_size = _checks.positive_int("batch_size", batch_size)
  max_length = _checks.positive_int("max_length", max_length)
  min_length = _checks.positive_int("min_length", min_length)
  if min_length > max_length:
    raise ValueError(f"min_length must be <= max_length={max_length}, got {min_length}")
  if task not in TASKS:
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")
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
    >>> from jaxrnn.attention import tasks
    >>> tgt = jnp.array([[5, 6, tasks.EOS], [7, tasks.EOS, 0]])
    >>> pred = jnp.array([[5, 4, tasks.EOS], [7, tasks.EOS, 9]])    # one wrong token; the padding is ignored
    >>> round(tasks.token_accuracy(pred, tgt, jnp.array([3, 2])).item(), 4)
    0.8
  """
  n = tgt_out.shape[1]
  if tokens.shape[1] < n:
    raise ValueError(f"tokens must have at least {n} steps (tgt_out's), got shape {tokens.shape}")
  valid = jnp.arange(n)[None, :] < tgt_lengths[:, None]
  hits = jnp.sum(jnp.where(valid, tokens[:, :n] == tgt_out, False))
  return hits.astype(jnp.float32) / jnp.maximum(jnp.sum(valid), 1).astype(jnp.float32)
