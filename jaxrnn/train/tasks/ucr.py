"""Time-series classification on UCR/UEA archive datasets, read from the ``.ts`` files aeon's wheel ships (nothing
is downloaded; aeon itself is never imported).

``task.dataset`` names one of :data:`DATASETS`; its ``<name>_TRAIN.ts`` and ``<name>_TEST.ts`` are read from
``task.data_dir`` or, by default, aeon's ``aeon/datasets/data/<name>/`` (``pip install 'jaxrnn[ucr]'``, or only the
files: ``pip install --no-deps aeon``). Each channel is standardised with the training split's mean and standard
deviation over valid steps. JapaneseVowels (12 channels, lengths 7..29, 9 speakers) has sequences of several
lengths: they are right-padded and run with ``seq_lengths``. The held-out split is the archive's test split.

Reference accuracies of published classifiers (mean over 30 resamples of the same train/test sizes) ship with
aeon too: :func:`reference_accuracy` reads them (InceptionTime, HC2, ...; univariate datasets only).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import pathlib
from typing import Optional, Tuple

import numpy as np

from jaxrnn import _optional
from jaxrnn.train.fields import field
from jaxrnn.train.tasks.base import Task, TaskConfig, TaskSpec, classifier_finish, dataset_task

# The datasets aeon 1.6's wheel ships (name: channels, length, train / test cases, classes).
DATASETS = {
    "JapaneseVowels": "12 channels, lengths 7-29, 270 / 370 cases, 9 speakers",
    "BasicMotions": "6 channels, length 100, 40 / 40 cases, 4 activities",
    "GunPoint": "1 channel, length 150, 50 / 150 cases, 2 classes",
    "ArrowHead": "1 channel, length 251, 36 / 175 cases, 3 classes",
    "OSULeaf": "1 channel, length 427, 200 / 242 cases, 6 classes",
    "ItalyPowerDemand": "1 channel, length 24, 67 / 1029 cases, 2 classes",
    "ACSF1": "1 channel, length 1460, 100 / 100 cases, 10 classes",
}


@dataclasses.dataclass(frozen=True)
class Config(TaskConfig):
  """``[task]`` of ``ucr``."""

  dataset: str = field("JapaneseVowels", choices=tuple(DATASETS), help="the UCR/UEA dataset")
  data_dir: str = field("", help="a directory holding <dataset>/<dataset>_TRAIN.ts and _TEST.ts; empty: aeon's "
                                 "shipped files")


def aeon_data_dir() -> pathlib.Path:
  """aeon's ``datasets/data`` directory, found without importing aeon.

  Raises:
    ImportError: aeon is not installed (naming the ``[ucr]`` extra).
  """
  spec = importlib.util.find_spec("aeon")
  if spec is None or not spec.submodule_search_locations:
    raise _optional.missing("task 'ucr' (the UCR/UEA files aeon ships)", "aeon", "ucr")
  return pathlib.Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def read_ts(path: pathlib.Path) -> Tuple[list, list, Tuple[str, ...]]:
  """Reads a ``.ts`` file of the UCR/UEA archive (sktime/aeon format).

  Returns:
    ``(series, labels, classes)``: ``series`` a list of ``float32[T_i, C]`` (one per case), ``labels`` their
    class strings, ``classes`` the ``@classLabel`` declaration's classes in order.

  Raises:
    ValueError: no ``@classLabel``/``@data``, missing values (``?``), channels of different lengths in one case,
      or a label not declared.
  """
  classes, series, labels, in_data = None, [], [], False
  for n, line in enumerate(pathlib.Path(path).read_text().splitlines(), 1):
    line = line.strip()
    if not line or line.startswith("#"):
      continue
    if not in_data:
      low = line.lower()
      if low.startswith("@classlabel"):
        parts = line.split()
        if len(parts) < 3 or parts[1].lower() != "true":
          raise ValueError(f"{path}:{n}: expected '@classLabel true <classes...>', got {line!r}")
        classes = tuple(parts[2:])
      elif low.startswith("@data"):
        in_data = True
      continue
    *dims, label = line.split(":")
    if "?" in line or "nan" in line.lower():
      raise ValueError(f"{path}:{n}: missing values are not supported")
    chans = [np.array(d.split(","), dtype=np.float32) for d in dims]
    if len({c.shape[0] for c in chans}) != 1:
      raise ValueError(f"{path}:{n}: the channels of one case have different lengths "
                       f"{sorted({c.shape[0] for c in chans})}")
    if classes is None or label.strip() not in classes:
      raise ValueError(f"{path}:{n}: class {label.strip()!r} is not declared by @classLabel {classes}")
    series.append(np.stack(chans, axis=-1))
    labels.append(label.strip())
  if classes is None or not in_data or not series:
    raise ValueError(f"{path}: not a .ts file with @classLabel and @data sections and at least one case")
  return series, labels, classes


def _pad(series: list, labels: list, classes: tuple, length: int) -> dict:
  x = np.zeros((len(series), length, series[0].shape[1]), np.float32)
  for i, s in enumerate(series):
    x[i, :s.shape[0]] = s
  lengths = np.array([s.shape[0] for s in series], np.int32)
  y = np.array([classes.index(l) for l in labels], np.int32)
  return {"x": x, "lengths": lengths, "y": y}


@functools.lru_cache(maxsize=4)
def load(dataset: str, data_dir: str = "") -> Tuple[dict, dict, Tuple[str, ...]]:
  """``(train, test, classes)`` of ``dataset``: splits ``{"x": float32[N, T, C], "lengths": int32[N],
  "y": int32[N]}`` right-padded to the longest case of both splits, channels standardised with the training
  split's statistics (padding stays 0)."""
  root = pathlib.Path(data_dir) if data_dir else aeon_data_dir()
  files = [root / dataset / f"{dataset}_{split}.ts" for split in ("TRAIN", "TEST")]
  for f in files:
    if not f.is_file():
      raise FileNotFoundError(f"task 'ucr': {f} does not exist (task.data_dir = {data_dir!r})")
  (tr_s, tr_l, classes), (te_s, te_l, te_classes) = read_ts(files[0]), read_ts(files[1])
  if te_classes != classes:
    raise ValueError(f"{dataset}: the test split declares classes {te_classes}, the train split {classes}")
  valid = np.concatenate(tr_s, axis=0)
  mean, std = valid.mean(0), valid.std(0)
  std = np.where(std > 0, std, 1.0)
  norm = lambda ss: [((s - mean) / std).astype(np.float32) for s in ss]
  length = max(s.shape[0] for s in tr_s + te_s)
  return _pad(norm(tr_s), tr_l, classes, length), _pad(norm(te_s), te_l, classes, length), classes


def task(cfg: Config) -> Task:
  train, test, classes = load(cfg.dataset, cfg.data_dir)
  variable = bool((train["lengths"] != train["x"].shape[1]).any() or (test["lengths"] != test["x"].shape[1]).any())
  return dataset_task("ucr", train, test, classes, lengths=variable)


def reference_accuracy(dataset: str, classifier: str = "InceptionTime") -> Optional[float]:
  """The mean test accuracy over 30 resamples of ``classifier`` on ``dataset`` from the results files aeon ships
  (``aeon/testing/example_results_files/classification/accuracy/<classifier>_accuracy.csv``); ``None`` if the
  file has no row for it (multivariate datasets)."""
  path = aeon_data_dir().parent.parent / "testing" / "example_results_files" / "classification" / "accuracy"
  path = path / f"{classifier}_accuracy.csv"
  if not path.is_file():
    raise FileNotFoundError(f"no results file {path}")
  for line in path.read_text().splitlines()[1:]:
    name, *values = line.split(",")
    if name == dataset:
      return float(np.mean([float(v) for v in values if v]))
  return None


def references(cfg: Config) -> dict:
  """``{"ref_InceptionTime": mean accuracy, "ref_HC2": ...}`` of ``cfg.dataset`` where aeon ships them."""
  out = {}
  for classifier in ("InceptionTime", "HC2"):
    value = reference_accuracy(cfg.dataset, classifier)
    if value is not None:
      out[f"ref_{classifier}"] = value
  return out


TASKS = (TaskSpec("ucr", Config, task, readout="last", finish=classifier_finish, references=references,
                  about="UCR/UEA time-series classification from aeon's shipped files (task.dataset; accuracy)"),)
