"""The task registry: every module of this package (except ``base`` and private ones) defines ``TASKS``, a tuple of
:class:`TaskSpec`, and is found here by its file alone. A new task is one module plus a config
(``jaxrnn/train/configs/<name>.toml``); nothing else names it.

A :class:`Task` bundles its data splits (arrays, possibly empty), a pure ``batch`` function and a pure ``loss``,
so that drawing a batch is part of the jitted train step and depends only on ``(seed, step)``. Row ``r`` of a
batch is drawn on its own, from ``fold_in(key, r)`` (:func:`batch_rows`), so that each process of a data-parallel
run draws only the rows its devices own and the global batch is the same on any number of devices. Data is
generated or read from installed packages (the standard library, ``[data]`` extra); nothing is downloaded.
"""

from __future__ import annotations

import importlib
import pkgutil

import jax.numpy as jnp

from jaxrnn.train.tasks.base import Task, TaskConfig, TaskSpec, batch_rows

__all__ = ["TASKS", "Task", "TaskConfig", "TaskSpec", "batch_rows", "make_task", "references", "spec"]


def _discover() -> dict:
  found = {}
  for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if info.name.startswith("_") or info.name == "base":
      continue
    module = importlib.import_module(f"{__name__}.{info.name}")
    if not hasattr(module, "TASKS"):
      raise ImportError(f"task module {module.__name__} defines no TASKS (a tuple of TaskSpec)")
    for s in module.TASKS:
      if s.name in found:
        raise ImportError(f"task {s.name!r} is defined twice ({module.__name__} and an earlier module)")
      found[s.name] = s
  return found


TASKS = _discover()  # name -> TaskSpec, in module order


def spec(name: str) -> TaskSpec:
  """The registry entry of task ``name``; ``ValueError`` naming the choices for an unknown one."""
  if name not in TASKS:
    raise ValueError(f"task.name = {name!r} is not a known task; choices: {', '.join(TASKS)}")
  return TASKS[name]


def references(cfg: TaskConfig) -> dict:
  """The published results a task declares for its config (``TaskSpec.references``), ``{}`` if none."""
  s = spec(cfg.name)
  return {} if s.references is None else dict(s.references(cfg))


def _by_rows(task: Task) -> Task:
  raw = task.batch
  rows = lambda data, key, r: batch_rows(raw, data, key, r)
  return task._replace(batch=lambda data, key, batch_size: rows(data, key, jnp.arange(batch_size)), rows=rows)


def make_task(cfg: TaskConfig) -> Task:
  """Builds the task of a task config (its batches drawn row by row)."""
  return _by_rows(spec(cfg.name).build(cfg))
