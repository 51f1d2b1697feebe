"""What a task module declares: its config (:class:`TaskConfig`), its registry entry (:class:`TaskSpec`) and the
:class:`Task` value its ``build`` returns; plus row-by-row batch drawing (:func:`batch_rows`) and the weighted
classification loss and accuracy the dataset tasks share.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn.train.fields import field

if TYPE_CHECKING:  # annotations only: the trainer imports the tasks
  from jaxrnn.train.step import Run


@dataclasses.dataclass(frozen=True)
class TaskConfig:
  """``[task]``: every task's config subclasses this (a frozen dataclass of :func:`jaxrnn.train.fields.field`
  fields); ``name`` is the task's registry name."""

  name: str = field("", help="the task (jaxrnn list prints them)")


class TaskSpec(NamedTuple):
  """A task's entry in the registry (:data:`jaxrnn.train.tasks.TASKS`); a task module defines ``TASKS``, a tuple
  of these.

  Fields:
    name: the ``task.name`` that selects it.
    config: its config class (a :class:`TaskConfig` subclass): the keys ``[task]`` accepts, with defaults.
    build: ``build(task_cfg) -> Task``; may read data (lazily imported, see :mod:`jaxrnn._optional`).
    readout: the model kind it needs, known before building: ``"last"``, ``"all"`` or ``"seq2seq"`` (see
      :class:`Task`); config checks are derived from it.
    about: one line for ``jaxrnn list``.
    check: ``None`` or ``check(task_cfg)`` raising :class:`jaxrnn.train.fields.ConfigError` for a bad
      combination of its fields.
    finish: ``None`` or ``finish(run, params, run_dir, *, plot) -> {label: path}``: the task's extras written at
      the end of a run (charlm's samples, a classifier's confusion matrix: :func:`classifier_finish`).
    references: ``None`` or ``references(task_cfg) -> {column: value}``: published results to print next to a
      run's (``ref_<model>`` accuracies), shown by ``jaxrnn train`` and ``jaxrnn compare``.
  """

  name: str
  config: type
  build: Callable
  readout: str
  about: str
  check: Optional[Callable] = None
  finish: Optional[Callable] = None
  references: Optional[Callable] = None


class Task(NamedTuple):
  """A supervised sequence task, built from its config.

  Fields:
    name: the task's name.
    input_vocab: number of input tokens (inputs are ``int32[B, T]`` and get embedded), or ``None`` for real
      inputs ``[B, T, input_size]``.
    input_size: features per step for real inputs (ignored for token inputs).
    output_size: readout width (classes, or 1 for regression).
    readout: ``"last"`` (one output per sequence, after its last step), ``"all"`` (one per step) or
      ``"seq2seq"`` (an encoder-decoder: :func:`jaxrnn.train.model.make_seq2seq_model`).
    data: ``{"train": pytree, "val": pytree}`` of arrays handed to ``batch`` (``()`` for generated tasks).
    batch: ``batch(data, key, batch_size) -> (inputs, targets)``, pure and jittable; from :func:`make_task`,
      ``batch_rows(data, key, arange(batch_size))``.
    loss: ``loss(outputs, targets) -> scalar`` (mean over the batch); with ``eval_size`` set,
      ``loss(outputs, targets, weights[B])``, the weighted mean.
    metric: name of the loss (``"mse"``, ``"xent"``; charlm's xent is in nats per character).
    baseline: the loss of the task's trivial baseline (the adding problem's always-1, the copy task's memoryless
      guess, charlm's unigram entropy, a classifier's majority class).
    rows: ``rows(data, key, rows int[R]) -> (inputs, targets)``: rows ``rows`` of ``batch(data, key, B)`` (any
      ``B`` above them), drawn without the others (set by :func:`make_task`).
    lengths: inputs are ``(x [B, T, F], seq_lengths int[B])``: right-padded sequences of several lengths.
    eval_size: ``None`` (the held-out loss is the mean over ``train.eval_batches`` random batches) or the number
      of held-out examples, each evaluated once: ``take`` returns them in order and ``loss`` and ``metrics``
      take example weights.
    take: ``take(data, idx int[B]) -> (inputs, targets)``: examples ``idx`` of a split (dataset tasks).
    metrics: ``None`` or ``metrics(outputs, targets[, weights]) -> {name: scalar}``, held-out metrics next to
      the loss (classifiers: ``accuracy``).
    classes: the class names of a classifier (the confusion matrix's labels), else ``None``.
    codec: ``None`` or ``(encode(str) -> int32[N], decode(ids) -> str)``: a text task (``jaxrnn sample``).
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
  lengths: bool = False
  eval_size: Optional[int] = None
  take: Optional[Callable] = None
  metrics: Optional[Callable] = None
  classes: Optional[Tuple[str, ...]] = None
  codec: Optional[Tuple[Callable, Callable]] = None


def batch_rows(batch: Callable, data: Any, key: jax.Array, rows: jax.Array) -> Any:
  """Rows ``rows`` of a batch whose row ``r`` is ``batch(data, fold_in(key, r), 1)``: ``[R, ...]`` leaves."""
  one = lambda r: jax.tree_util.tree_map(lambda a: a[0], batch(data, jax.random.fold_in(key, r), 1))
  return jax.vmap(one)(jnp.asarray(rows))


def class_xent(logits: jax.Array, labels: jax.Array, weights: Optional[jax.Array] = None) -> jax.Array:
  """Mean cross-entropy (nats) of ``logits [B, C]`` against ``labels int[B]``, weighted by ``weights [B]``.

  ``sum_b w_b (logsumexp(z_b) - z_b[y_b]) / sum_b w_b`` (all weights 1 without ``weights``).
  """
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]
  w = jnp.ones_like(nll) if weights is None else weights.astype(jnp.float32)
  return jnp.sum(w * nll) / jnp.maximum(jnp.sum(w), 1.0)


def class_accuracy(logits: jax.Array, labels: jax.Array, weights: Optional[jax.Array] = None) -> dict:
  """``{"accuracy": weighted fraction of argmax(logits) == labels}``."""
  hit = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
  w = jnp.ones_like(hit) if weights is None else weights.astype(jnp.float32)
  return {"accuracy": jnp.sum(w * hit) / jnp.maximum(jnp.sum(w), 1.0)}


def classifier_finish(run: Run, params: Any, run_dir: str | pathlib.Path, *, plot: bool = True) -> dict:
  """``TaskSpec.finish`` of the classifiers: the confusion matrix of the held-out split
  (:func:`jaxrnn.train.report.write_confusion`)."""
  from jaxrnn.train import report  # pylint: disable=g-import-not-at-top (the trainer's module, not the task's)
  return report.write_confusion(run, params, run_dir, plot=plot)


def dataset_task(name: str, train: dict, val: dict, classes: Tuple[str, ...], *, lengths: bool) -> Task:
  """A sequence classifier over fixed splits ``{"x": float32[N, T, F], "lengths": int32[N], "y": int32[N]}``.

  Training batches draw examples uniformly with replacement (row ``r`` from its own key); the held-out loss,
  ``accuracy`` and the confusion matrix cover every held-out example once (``eval_size``). The baseline is the
  cross-entropy of predicting the training split's class frequencies on the held-out split.

  Args:
    name: the task's name.
    train: the training split (NumPy arrays).
    val: the held-out split.
    classes: the class names, ``y`` indexes them.
    lengths: the sequences are right-padded to ``T`` and ``lengths`` holds their lengths (inputs become
      ``(x, lengths)``); ``False``: every sequence has ``T`` steps.
  """
  counts = np.bincount(train["y"], minlength=len(classes)).astype(np.float64) + 1e-12
  prior = counts / counts.sum()
  baseline = float(-np.mean(np.log(prior[val["y"]])))
  as_jnp = lambda split: {k: jnp.asarray(v) for k, v in split.items()}

  def take(data, idx):
    x, y = data["x"][idx], data["y"][idx]
    return ((x, data["lengths"][idx]) if lengths else x), y

  def batch(data, key, batch_size):
    return take(data, jax.random.randint(key, (batch_size,), 0, data["y"].shape[0]))

  return Task(name=name, input_vocab=None, input_size=int(train["x"].shape[-1]), output_size=len(classes),
              readout="last", data={"train": as_jnp(train), "val": as_jnp(val)}, batch=batch, loss=class_xent,
              metric="xent", baseline=baseline, lengths=lengths, eval_size=int(val["y"].shape[0]), take=take,
              metrics=class_accuracy, classes=tuple(classes))
