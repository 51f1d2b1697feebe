"""Sampling text from a trained model of a text task (one whose :class:`jaxrnn.train.tasks.Task` has a ``codec``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax

if TYPE_CHECKING:  # annotations only
  from jaxrnn.train.step import Run


def sample_text(run: Run, params: Any, *, prompt: str = "def ", length: int = 400, seed: int = 0,
                temperature: float = 1.0, top_k: int = 0) -> str:
  """Samples ``length`` characters after ``prompt``; deterministic for a ``seed``.

  Args:
    run: a :class:`jaxrnn.train.step.Run` of a text task (``run.sample`` is its jitted sampler: every temperature
      shares one compiled function).
    params: the model's params.
    prompt: the text to continue (at least one character the task's codec encodes).
    length: characters to sample.
    seed: the sampling key's seed.
    temperature: softmax temperature; 0 is greedy.
    top_k: sample among the ``k`` most likely characters (0: all).

  Raises:
    ValueError: the task is not a text task, or the prompt encodes to nothing.
  """
  if run.task.codec is None or run.sample is None:
    raise ValueError(f"sampling needs a text task (one with a codec, e.g. charlm); this run's task is "
                     f"{run.task.name!r}")
  encode, decode = run.task.codec
  ids = encode(prompt)
  if ids.size == 0:
    raise ValueError("prompt must hold at least one ASCII character")
  toks = run.sample(params, ids, length=int(length), key=jax.random.key(seed), temperature=float(temperature),
                    top_k=int(top_k))
  return prompt + decode(toks)
