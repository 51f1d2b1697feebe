"""scikit-learn's handwritten digits (``sklearn.datasets.load_digits``: 1797 images of 8x8 pixels, 16 grey levels,
shipped with scikit-learn) read as sequences: 8 steps of a row of 8 pixels (``task.layout = "rows"``) or 64
steps of one pixel (``"pixels"``, in the spirit of sequential MNIST).

Pixels are scaled to ``[0, 1]``. The held-out split is a fixed, stratified ``task.test_fraction`` of the images
(``task.split_seed``). Needs ``pip install 'jaxrnn[data]'``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Dict, Tuple

import numpy as np

from jaxrnn import _optional
from jaxrnn.train.fields import field
from jaxrnn.train.tasks.base import Task, TaskConfig, TaskSpec, classifier_finish, dataset_task


@dataclasses.dataclass(frozen=True)
class Config(TaskConfig):
  """``[task]`` of ``sklearn_digits``."""

  layout: str = field("rows", choices=("rows", "pixels"), help="8 steps of 8 pixels, or 64 steps of 1 pixel")
  test_fraction: float = field(0.25, min=0.05, max=0.5, help="held-out fraction (stratified by class)")
  split_seed: int = field(0, min=0, help="seed of the train/test split")


@functools.lru_cache(maxsize=4)
def load(layout: str = "rows", test_fraction: float = 0.25,
         split_seed: int = 0) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
  """``(train, test)`` splits ``{"x": float32[N, T, F], "lengths": int32[N], "y": int32[N]}``, ``(T, F)`` =
  ``(8, 8)`` for rows and ``(64, 1)`` for pixels; each class split in the same proportion."""
  try:
    from sklearn import datasets  # pylint: disable=g-import-not-at-top (optional)
  except ImportError as e:
    raise _optional.missing("task 'sklearn_digits'", "scikit-learn", "data") from e
  digits: Any = datasets.load_digits()  # a Bunch (scikit-learn's return type also names the return_X_y tuple)
  x = (digits.images / 16.0).astype(np.float32).reshape((-1,) + {"rows": (8, 8), "pixels": (64, 1)}[layout])
  y = digits.target.astype(np.int32)
  rng = np.random.default_rng(split_seed)
  test = np.zeros(len(y), bool)
  for c in range(10):
    idx = rng.permutation(np.flatnonzero(y == c))
    test[idx[:int(round(len(idx) * test_fraction))]] = True
  split = lambda m: {"x": x[m], "y": y[m], "lengths": np.full(int(m.sum()), x.shape[1], np.int32)}
  return split(~test), split(test)


def task(cfg: Config) -> Task:
  train, test = load(cfg.layout, cfg.test_fraction, cfg.split_seed)
  return dataset_task("sklearn_digits", train, test, tuple(str(d) for d in range(10)), lengths=False)


TASKS = (TaskSpec("sklearn_digits", Config, task, readout="last", finish=classifier_finish,
                  about="scikit-learn's 8x8 digits as 8 rows or 64 pixels (accuracy)"),)
