"""A run's functions built from a config: the task, model and optimizer, and the jitted train, eval and sample
functions (:class:`Run`).

:func:`build` is what :func:`jaxrnn.train.loop.train` uses (or the ``run`` it is handed: build once, train,
resume and evaluate in one process without compiling again) and what :mod:`jaxrnn.train.distributed` builds again
with a task fed its batches, so both run the same step code. Nothing is cached at module level: a :class:`Run` is
the explicit object that holds compiled functions.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from jaxrnn import _optional
from jaxrnn.train import config as config_lib
from jaxrnn.train import model as model_lib
from jaxrnn.train.tasks import Task, make_task, spec

try:
  import optax
except ImportError as e:
  raise _optional.missing("jaxrnn.train", "optax", "train") from e


class TrainState(NamedTuple):
  """What a checkpoint holds."""

  step: jax.Array  # int32[] steps taken
  params: Any  # ModelParams
  opt_state: Any  # the optax state


class Run(NamedTuple):
  """Everything built from a config: the task, the model, the optimizer and the jitted functions.

  Fields:
    train_step: ``train_step(state, train_data) -> (state, loss)``, one jitted function (batch, forward,
      gradient, clipping, update).
    evaluate: ``evaluate(params, val_data) -> loss``, jitted; the mean loss over ``train.eval_batches`` fixed
      held-out batches.
    init_state: ``init_state() -> TrainState`` at step 0.
    eval_metrics: ``None``, or ``eval_metrics(params, val_data) -> {name: scalar}``, jitted: the held-out metrics
      of the model (``Model.metrics``, seq2seq accuracies) or of the task (``Task.metrics``, a classifier's
      accuracy) over the same examples as ``evaluate``.
    outputs: ``None``, or for a task with ``eval_size``: ``outputs(params, val_data) -> (outputs [N, ...],
      targets [N, ...])`` of every held-out example in order, jitted (a classifier's confusion matrix).
    sample: ``None``, or for a text task (``Task.codec``): the model's ``sample`` jitted with ``length`` and
      ``top_k`` static (the temperature is traced: one compiled sampler for every temperature).
  """

  cfg: config_lib.Config
  task: Task
  model: model_lib.Model
  optimizer: optax.GradientTransformation
  train_step: Callable
  evaluate: Callable
  init_state: Callable
  eval_metrics: Optional[Callable] = None
  outputs: Optional[Callable] = None
  sample: Optional[Callable] = None


def make_optimizer(cfg: config_lib.OptimizerConfig, total_steps: int) -> optax.GradientTransformation:
  """``clip_by_global_norm(clip_norm)`` (if > 0) followed by the optimizer with its learning-rate schedule."""
  end = cfg.lr * cfg.end_lr_fraction
  if cfg.schedule == "constant":
    lr = optax.constant_schedule(cfg.lr) if cfg.warmup_steps == 0 else optax.join_schedules(
        [optax.linear_schedule(0.0, cfg.lr, cfg.warmup_steps), optax.constant_schedule(cfg.lr)], [cfg.warmup_steps])
  elif cfg.schedule == "cosine":
    lr = optax.cosine_decay_schedule(cfg.lr, max(total_steps, 1), alpha=cfg.end_lr_fraction)
  else:
    lr = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, cfg.warmup_steps, max(total_steps, cfg.warmup_steps + 1),
                                            end_value=end)
  opt = {
      "adam": lambda: optax.adam(lr),
      "adamw": lambda: optax.adamw(lr, weight_decay=cfg.weight_decay),
      "rmsprop": lambda: optax.rmsprop(lr, momentum=cfg.momentum),
      "sgd": lambda: optax.sgd(lr, momentum=cfg.momentum or None),
  }[cfg.name]()
  return optax.chain(optax.clip_by_global_norm(cfg.clip_norm), opt) if cfg.clip_norm > 0 else opt


def run_keys(seed: int) -> Tuple[jax.Array, jax.Array, jax.Array]:
  """The ``(init, train, eval)`` keys of a run's ``train.seed``: ``fold_in(key(seed), 0 | 1 | 2)``."""
  root = jax.random.key(seed)
  return jax.random.fold_in(root, 0), jax.random.fold_in(root, 1), jax.random.fold_in(root, 2)


def build(cfg: config_lib.Config, task: Optional[Task] = None) -> Run:
  """Builds ``cfg``'s task (or uses ``task``), model, optimizer and jitted train, eval and sample functions."""
  task = make_task(cfg.task) if task is None else task  # distributed.py passes a task fed its batches
  if task.readout != spec(cfg.task.name).readout:
    raise ValueError(f"task {task.name!r} built a {task.readout!r} readout, its TaskSpec declares "
                     f"{spec(cfg.task.name).readout!r}")
  model = model_lib.make_model(cfg.model, task)
  optimizer = make_optimizer(cfg.optimizer, cfg.train.steps)
  init_key, train_key, eval_key = run_keys(cfg.train.seed)
  bs = cfg.train.batch_size

  def init_state():
    params = model.init(init_key)
    return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params))

  @jax.jit
  def train_step(state, data):
    key = jax.random.fold_in(train_key, state.step)
    k_data, k_drop = jax.random.split(key)
    inputs, targets = task.batch(data, k_data, bs)

    def loss_fn(params):
      return model.loss(params, inputs, targets, k_drop)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return guard_nonfinite(state, TrainState(state.step + 1, params, opt_state), loss, grads,
                           skip=cfg.train.on_nonfinite == "skip")

  if task.eval_size is None:
    evaluate, eval_metrics, outputs = _sampled_eval(cfg, task, model, eval_key)
  else:
    evaluate, eval_metrics, outputs = _full_eval(task, model, bs)
  sample = jax.jit(model.sample, static_argnames=("length", "top_k")) if task.codec is not None else None
  return Run(cfg, task, model, optimizer, train_step, evaluate, init_state, eval_metrics, outputs, sample)


def _sampled_eval(cfg, task, model, eval_key):
  """The mean loss and metrics over ``train.eval_batches`` batches drawn with fixed keys (generated tasks)."""
  bs = cfg.train.batch_size
  eval_keys = lambda: jax.vmap(lambda i: jax.random.fold_in(eval_key, i))(jnp.arange(cfg.train.eval_batches))

  @jax.jit
  def evaluate(params, data):
    def one(k):
      inputs, targets = task.batch(data, k, bs)
      return model.loss(params, inputs, targets)
    return jnp.mean(jax.lax.map(one, eval_keys()))

  if model.metrics is not None:
    metrics = model.metrics
  elif task.metrics is not None:
    metrics = lambda params, inputs, targets: task.metrics(model.apply(params, inputs), targets)
  else:
    return evaluate, None, None

  @jax.jit
  def eval_metrics(params, data):
    def one(k):
      inputs, targets = task.batch(data, k, bs)
      return metrics(params, inputs, targets)
    return jax.tree_util.tree_map(jnp.mean, jax.lax.map(one, eval_keys()))

  return evaluate, eval_metrics, None


def _full_eval(task, model, bs):
  """Every held-out example once, in chunks of ``bs`` (the last one padded with zero-weight examples)."""
  if task.take is None or model.metrics is not None:
    raise ValueError(f"task {task.name!r} sets eval_size: it needs take() and a model without its own metrics")
  n = int(task.eval_size)
  chunks = -(-n // bs)
  idx = jnp.arange(chunks * bs).reshape(chunks, bs)
  weights = (idx < n).astype(jnp.float32)
  idx = jnp.minimum(idx, n - 1)

  def per_chunk(params, data, fn):
    def one(args):
      i, w = args
      inputs, targets = task.take(data, i)
      return fn(model.apply(params, inputs), targets, w)
    return jax.lax.map(one, (idx, weights))

  total = jnp.sum(weights)
  chunk_weight = jnp.sum(weights, axis=1)
  mean = lambda per: jnp.sum(per * chunk_weight) / total  # weighted chunk means -> the mean over the n examples

  @jax.jit
  def scores(params, data):  # the loss and the metrics from one forward pass (one compiled program)
    def fn(out, targets, w):
      return task.loss(out, targets, w), ({} if task.metrics is None else task.metrics(out, targets, w))
    loss, metrics = per_chunk(params, data, fn)
    return mean(loss), jax.tree_util.tree_map(mean, metrics)

  evaluate = lambda params, data: scores(params, data)[0]
  eval_metrics = None if task.metrics is None else (lambda params, data: scores(params, data)[1])

  @jax.jit
  def outputs(params, data):
    out, targets = per_chunk(params, data, lambda o, t, w: (o, t))
    flat = lambda a: a.reshape((chunks * bs,) + a.shape[2:])[:n]
    return jax.tree_util.tree_map(flat, out), jax.tree_util.tree_map(flat, targets)

  return evaluate, eval_metrics, outputs


def guard_nonfinite(old: TrainState, new: TrainState, loss: jax.Array, grads: Any, *,
                    skip: bool) -> Tuple[TrainState, jax.Array]:
  """``(state, loss)`` of a train step that never takes a non-finite update.

  If ``loss`` or any gradient is NaN/Inf, the params and optimizer state stay ``old``'s (with ``skip`` the step
  counter still advances, so the next step draws the next batch; without it the state stays exactly ``old``)
  and the returned loss is NaN (or the non-finite loss), which the loop reports with the step. Otherwise
  ``new`` is returned bit-for-bit.
  """
  finite = jnp.isfinite(loss)
  for g in jax.tree_util.tree_leaves(grads):
    finite = finite & jnp.all(jnp.isfinite(g))
  kept = TrainState(old.step + 1 if skip else old.step, old.params, old.opt_state)
  state = jax.tree_util.tree_map(lambda n, o: jnp.where(finite, n, o), new, kept)
  return state, jnp.where(finite, loss, jnp.where(jnp.isfinite(loss), jnp.nan, loss))
