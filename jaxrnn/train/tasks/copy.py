"""The copy-memory task (Hochreiter & Schmidhuber 1997; the variant of Arjovsky, Shah & Bengio 2016).

Input (length ``T + 20``): 10 symbols from ``{1..8}``, ``T - 1`` blanks (0), a delimiter (9), 10 blanks.
Target: ``T + 10`` blanks, then the 10 symbols. A memoryless model that outputs blanks and then guesses uniformly
gets cross-entropy ``10 log 8 / (T + 20)`` per step, the baseline.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Tuple

import jax
import jax.numpy as jnp

from jaxrnn.train.fields import field
from jaxrnn.train.tasks.base import Task, TaskConfig, TaskSpec

N_SYMBOLS = 8  # data symbols 1..8
BLANK, DELIM = 0, 9
VOCAB = 10
COPY_LEN = 10


@dataclasses.dataclass(frozen=True)
class Config(TaskConfig):
  """``[task]`` of ``copy``."""

  seq_len: int = field(50, min=2, help="the delay T (sequences are T + 20 long)")


def batch(data: Any, key: jax.Array, batch_size: int, *, delay: int) -> Tuple[jax.Array, jax.Array]:
  """``(inputs int32[B, T+20], targets int32[B, T+20])``."""
  del data
  symbols = jax.random.randint(key, (batch_size, COPY_LEN), 1, N_SYMBOLS + 1)
  blanks = lambda n: jnp.full((batch_size, n), BLANK, jnp.int32)
  delim = jnp.full((batch_size, 1), DELIM, jnp.int32)
  inputs = jnp.concatenate([symbols, blanks(delay - 1), delim, blanks(COPY_LEN)], axis=1)
  targets = jnp.concatenate([blanks(delay + COPY_LEN), symbols], axis=1)
  return inputs, targets


def loss(outputs: jax.Array, targets: jax.Array) -> jax.Array:
  """Mean cross-entropy (nats) of ``outputs [B, T, V]`` logits against ``targets int[B, T]``."""
  logp = jax.nn.log_softmax(outputs.astype(jnp.float32), axis=-1)
  return -jnp.mean(jnp.take_along_axis(logp, targets[..., None], axis=-1))


def task(delay: int) -> Task:
  """The copy task with delay ``T = delay``."""
  return Task(name="copy", input_vocab=VOCAB, input_size=0, output_size=VOCAB, readout="all",
              data={"train": (), "val": ()}, batch=lambda d, k, b: batch(d, k, b, delay=delay), loss=loss,
              metric="xent", baseline=COPY_LEN * math.log(N_SYMBOLS) / (delay + 2 * COPY_LEN))


TASKS = (TaskSpec("copy", Config, lambda cfg: task(cfg.seq_len), readout="all",
                  about="the copy-memory task: repeat 10 symbols after a delay of T blanks (cross-entropy)"),)
