"""MNIST-1D (Greydanus 2020): 1-D signals of 40 steps generated procedurally from templates of the ten digits,
classified by an RNN reading one value a step.

The data is ``mnist1d.data.make_dataset`` with the package's default arguments (5000 examples, 4000 / 1000
train / test, seed 42) or ``task.num_samples`` and ``task.data_seed``: generated in memory, never
``get_dataset`` (which downloads a pickle). The generator seeds NumPy's and Python's global random state; the
state is put back afterwards. Published test accuracies (the paper's Table 1): logistic regression 32%, MLP 68%,
CNN 94%, GRU 91%. Needs ``pip install 'jaxrnn[data]'``.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from typing import Dict, Tuple

import numpy as np

from jaxrnn import _optional
from jaxrnn.train.fields import field
from jaxrnn.train.tasks.base import Task, TaskConfig, TaskSpec, classifier_finish, dataset_task

PUBLISHED = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}  # Greydanus 2020, Table 1


@dataclasses.dataclass(frozen=True)
class Config(TaskConfig):
  """``[task]`` of ``mnist1d``."""

  num_samples: int = field(5000, min=20, help="examples generated (80% train, 20% test; 5000 is the benchmark)")
  data_seed: int = field(42, min=0, help="the generator's seed (42 is the benchmark's)")


@functools.lru_cache(maxsize=4)
def load(num_samples: int = 5000, data_seed: int = 42) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
  """``(train, test)`` splits ``{"x": float32[N, 40, 1], "lengths": int32[N], "y": int32[N]}``."""
  try:
    from mnist1d import data as m1d  # pylint: disable=g-import-not-at-top (optional)
  except ImportError as e:
    raise _optional.missing("task 'mnist1d'", "mnist1d", "data") from e
  args = m1d.get_dataset_args()
  # mnist1d annotates get_dataset_args() as a dict or an ObjectView; it is an ObjectView (attributes settable).
  args.num_samples, args.seed = int(num_samples), int(data_seed)  # pyright: ignore[reportAttributeAccessIssue]
  np_state, py_state = np.random.get_state(), random.getstate()
  try:
    ds = m1d.make_dataset(args)
  finally:
    np.random.set_state(np_state)
    random.setstate(py_state)
  split = lambda x, y: {"x": np.asarray(x, np.float32)[..., None], "y": np.asarray(y, np.int32),
                        "lengths": np.full(len(y), np.shape(x)[1], np.int32)}
  return split(ds["x"], ds["y"]), split(ds["x_test"], ds["y_test"])


def task(cfg: Config) -> Task:
  train, test = load(cfg.num_samples, cfg.data_seed)
  return dataset_task("mnist1d", train, test, tuple(str(d) for d in range(10)), lengths=False)


TASKS = (TaskSpec("mnist1d", Config, task, readout="last", finish=classifier_finish,
                  references=lambda cfg: {"ref_gru": PUBLISHED["gru"]} if cfg == Config(name="mnist1d") else {},
                  about="MNIST-1D: classify 40-step 1-D digit signals (Greydanus 2020; accuracy)"),)
