"""Character-level language modelling (in the spirit of Karpathy's char-rnn) on the Python standard library.

The corpus ships with every Python: the ``.py`` files at the top of the running interpreter's standard library
(``sysconfig.get_paths()["stdlib"]``), read in sorted order and cut to ``corpus_chars`` characters, as char-rnn
was trained on the Linux source. Characters are ASCII codes (vocabulary 128; other characters are dropped). The
last ``val_fraction`` of the corpus is the held-out split. The corpus depends on the Python version, not on the
machine's state.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pathlib
import sysconfig
from typing import TYPE_CHECKING, Any, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn.train.fields import field
from jaxrnn.train.tasks.base import Task, TaskConfig, TaskSpec

if TYPE_CHECKING:  # annotations only: the trainer imports the tasks
  from jaxrnn.train.step import Run

VOCAB = 128


@dataclasses.dataclass(frozen=True)
class Config(TaskConfig):
  """``[task]`` of ``charlm``."""

  seq_len: int = field(64, min=2, help="BPTT length (characters per training window)")
  corpus_chars: int = field(1_000_000, min=1000, help="characters of standard-library source to read")
  val_fraction: float = field(0.1, min=0.01, max=0.5, help="held-out fraction (the corpus' tail)")


def encode(text: str) -> np.ndarray:
  """ASCII codes of ``text`` (``int32[N]``); non-ASCII characters are dropped."""
  return np.frombuffer(text.encode("ascii", errors="ignore"), dtype=np.uint8).astype(np.int32)


def decode(ids: Any) -> str:
  """The text of ASCII codes ``ids``."""
  return bytes(int(i) for i in np.asarray(ids).reshape(-1)).decode("ascii", errors="replace")


@functools.lru_cache(maxsize=4)
def corpus(corpus_chars: int) -> np.ndarray:
  """The first ``corpus_chars`` ASCII characters of the standard library's top-level sources, ``uint8[N]``."""
  stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
  chunks, total = [], 0
  for path in sorted(stdlib.glob("*.py")):
    try:
      data = path.read_bytes()
    except OSError:
      continue
    data = bytes(b for b in data if b < 128) if not data.isascii() else data
    chunks.append(data + b"\n")
    total += len(data) + 1
    if total >= corpus_chars:
      break
  text = b"".join(chunks)[:corpus_chars]
  if len(text) < 1000:
    raise RuntimeError(f"the standard library at {stdlib} has too little source for the charlm corpus")
  return np.frombuffer(text, dtype=np.uint8).copy()


def batch(data: jax.Array, key: jax.Array, batch_size: int, *, seq_len: int) -> Tuple[jax.Array, jax.Array]:
  """Random windows of ``data``: ``(inputs int32[B, T], targets int32[B, T])``, targets shifted by one."""
  n = data.shape[0]
  starts = jax.random.randint(key, (batch_size,), 0, n - seq_len - 1)
  windows = jax.vmap(lambda s: jax.lax.dynamic_slice(data, (s,), (seq_len + 1,)))(starts).astype(jnp.int32)
  return windows[:, :-1], windows[:, 1:]


def loss(outputs: jax.Array, targets: jax.Array) -> jax.Array:
  """Mean cross-entropy (nats per character) of logits ``[B, T, V]`` against ``int[B, T]``."""
  logp = jax.nn.log_softmax(outputs.astype(jnp.float32), axis=-1)
  return -jnp.mean(jnp.take_along_axis(logp, targets[..., None], axis=-1))


def task(seq_len: int, *, corpus_chars: int = 1_000_000, val_fraction: float = 0.1) -> Task:
  """The charlm task: BPTT windows of ``seq_len`` characters; the corpus' tail is the held-out split."""
  text = corpus(corpus_chars)
  n_val = max(int(len(text) * val_fraction), seq_len + 2)
  train, val = text[:-n_val], text[-n_val:]
  if len(train) < seq_len + 2:
    raise ValueError(f"task.seq_len = {seq_len} is too long for a corpus of {len(text)} characters")
  counts = np.bincount(train, minlength=VOCAB).astype(np.float64)
  p = counts[counts > 0] / counts.sum()
  unigram = float(-(p * np.log(p)).sum())
  return Task(name="charlm", input_vocab=VOCAB, input_size=0, output_size=VOCAB, readout="all",
              data={"train": jnp.asarray(train), "val": jnp.asarray(val)},
              batch=lambda d, k, b: batch(d, k, b, seq_len=seq_len), loss=loss, metric="xent", baseline=unigram,
              codec=(encode, decode))


NATS_TO_BITS = 1.0 / math.log(2.0)


def finish(run: Run, params: Any, run_dir: pathlib.Path, *, plot: bool = True) -> dict:
  """Writes ``samples.txt``: 400 characters after ``"def "`` at temperature 0.8, seed 0."""
  del plot
  from jaxrnn.train import sampling  # pylint: disable=g-import-not-at-top (the trainer's, not the task's)
  path = pathlib.Path(run_dir) / "samples.txt"
  path.write_text(sampling.sample_text(run, params, prompt="def ", length=400, seed=0, temperature=0.8) + "\n")
  return {"samples": str(path)}


TASKS = (TaskSpec("charlm", Config,
                  lambda cfg: task(cfg.seq_len, corpus_chars=cfg.corpus_chars, val_fraction=cfg.val_fraction),
                  readout="all", finish=finish,
                  about="character-level language model of the Python standard library's source (nats/char)"),)
