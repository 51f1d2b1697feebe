"""The adding problem (Hochreiter & Schmidhuber 1997; the variant of Arjovsky, Shah & Bengio 2016).

Each step carries two features: a value ``U[0, 1]`` and a marker. Exactly one marker is set in each half of the
sequence; the target is the sum of the two marked values. Predicting the mean sum, 1, gives the baseline MSE
``Var(U1 + U2) = 1/6 ~ 0.167``; a model must remember two values across up to ``T`` steps to beat it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Tuple

import jax
import jax.numpy as jnp

from jaxrnn.train.fields import field
from jaxrnn.train.tasks.base import Task, TaskConfig, TaskSpec

BASELINE_MSE = 1.0 / 6.0


@dataclasses.dataclass(frozen=True)
class Config(TaskConfig):
  """``[task]`` of ``adding``."""

  seq_len: int = field(100, min=2, help="T, the sequence length")


def batch(data: Any, key: jax.Array, batch_size: int, *, seq_len: int) -> Tuple[jax.Array, jax.Array]:
  """``(inputs [B, T, 2], targets [B])``: values and markers, and the sum of the two marked values."""
  del data
  k_val, k_a, k_b = jax.random.split(key, 3)
  half = seq_len // 2
  values = jax.random.uniform(k_val, (batch_size, seq_len))
  first = jax.random.randint(k_a, (batch_size,), 0, half)
  second = jax.random.randint(k_b, (batch_size,), half, seq_len)
  t = jnp.arange(seq_len)[None, :]
  markers = ((t == first[:, None]) | (t == second[:, None])).astype(values.dtype)
  targets = jnp.sum(values * markers, axis=1)
  return jnp.stack([values, markers], axis=-1), targets


def loss(outputs: jax.Array, targets: jax.Array) -> jax.Array:
  """Mean squared error of ``outputs [B, 1]`` against ``targets [B]``."""
  return jnp.mean(jnp.square(outputs[:, 0].astype(jnp.float32) - targets))


def task(seq_len: int) -> Task:
  """The adding problem with sequences of length ``seq_len``."""
  return Task(name="adding", input_vocab=None, input_size=2, output_size=1, readout="last",
              data={"train": (), "val": ()}, batch=lambda d, k, b: batch(d, k, b, seq_len=seq_len), loss=loss,
              metric="mse", baseline=BASELINE_MSE)


TASKS = (TaskSpec("adding", Config, lambda cfg: task(cfg.seq_len), readout="last",
                  about="the adding problem: sum the two marked values of a length-T sequence (MSE)"),)
