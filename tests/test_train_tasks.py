"""The task registry and the dataset tasks: each task's data (shapes, lengths, labels), one training step on the
classifiers, the whole held-out split evaluated once, and the variable-length readout against each sequence run
alone."""

import importlib.util
import json
import pathlib
import random
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxrnn.train import cells, config, report, rundir, step, tasks
from jaxrnn.train import model as model_lib
from jaxrnn.train.tasks import base, mnist1d, sklearn_digits, ucr

pytestmark = pytest.mark.usefixtures("quick_compiles")

HAS_AEON = importlib.util.find_spec("aeon") is not None
HAS_DATA = importlib.util.find_spec("mnist1d") is not None and importlib.util.find_spec("sklearn") is not None


def write_ts(path, cases, classes):
  """A .ts file in the UEA format: ``cases`` are ``(float[T, C], label)``."""
  lines = ["# made by a test", "@problemName Toy", "@timeStamps false", "@univariate false",
           f"@dimensions {cases[0][0].shape[1]}", "@equalLength false", f"@classLabel true {' '.join(classes)}",
           "@data"]
  for x, label in cases:
    lines.append(":".join(",".join(repr(float(v)) for v in x[:, c]) for c in range(x.shape[1])) + f":{label}")
  path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
  """A UEA-format dataset 'JapaneseVowels' of 2 channels, lengths 2..6, classes a/b/c (train 9, test 5)."""
  root = tmp_path_factory.mktemp("ucr")
  (root / "JapaneseVowels").mkdir()
  rng = np.random.default_rng(0)
  for split, n in (("TRAIN", 9), ("TEST", 5)):
    cases = [(rng.normal(size=(2 + i % 5, 2)).round(3), "abc"[i % 3]) for i in range(n)]
    write_ts(root / "JapaneseVowels" / f"JapaneseVowels_{split}.ts", cases, ["a", "b", "c"])
  return root


def test_registry_is_the_one_list_of_tasks():
  for name in ("adding", "copy", "charlm", "reverse", "sort", "ucr", "mnist1d", "sklearn_digits"):
    s = tasks.TASKS[name]
    assert s.name == name and s.readout in ("last", "all", "seq2seq")
    assert issubclass(s.config, tasks.TaskConfig) and config.from_dict({"task": {"name": name}}).task.name == name
  with pytest.raises(config.ConfigError, match="choices: " + ", ".join(tasks.TASKS)):
    config.from_dict({"task": {"name": "nope"}})
  assert config.CELL_NAMES == tuple(cells.CELLS) and config.SEQ2SEQ_ATTENTION == tuple(cells.ATTENTION)


def test_read_ts_lengths_labels_and_normalisation(toy_dir):
  series, labels, classes = ucr.read_ts(toy_dir / "JapaneseVowels" / "JapaneseVowels_TRAIN.ts")
  assert classes == ("a", "b", "c") and labels[:4] == ["a", "b", "c", "a"]
  assert [s.shape for s in series[:3]] == [(2, 2), (3, 2), (4, 2)]
  train, test, classes = ucr.load("JapaneseVowels", str(toy_dir))
  assert train["x"].shape == (9, 6, 2) and test["x"].shape == (5, 6, 2)
  np.testing.assert_array_equal(train["lengths"], [2, 3, 4, 5, 6, 2, 3, 4, 5])
  np.testing.assert_array_equal(train["y"], [0, 1, 2] * 3)
  valid = np.concatenate([train["x"][i, :n] for i, n in enumerate(train["lengths"])])
  np.testing.assert_allclose(valid.mean(0), 0.0, atol=1e-5)
  np.testing.assert_allclose(valid.std(0), 1.0, atol=1e-5)
  assert (train["x"][0, 2:] == 0).all()  # padding


@pytest.mark.parametrize("text, message", [
    ("@classLabel true a b\n@data\n1,2:3:a\n", "channels of one case have different lengths"),
    ("@classLabel true a b\n@data\n1,2:c\n", "class 'c' is not declared"),
    ("@classLabel true a b\n@data\n1,?:a\n", "missing values are not supported"),
    ("@data\n1,2:a\n", "is not declared by @classLabel None"),
])
def test_read_ts_refuses_bad_files(tmp_path, text, message):
  (tmp_path / "bad.ts").write_text(text)
  with pytest.raises(ValueError, match=message):
    ucr.read_ts(tmp_path / "bad.ts")


TINY = {"model": {"cell": "gru", "hidden_size": 3}, "train": {"batch_size": 4, "steps": 2, "eval_every": 2,
                                                              "checkpoint_every": 2}}


def test_variable_lengths_train_step_full_eval_and_confusion(toy_dir, tmp_path):
  cfg = config.from_dict({**TINY, "task": {"name": "ucr", "data_dir": str(toy_dir)}})
  run = step.build(cfg)
  task = run.task
  assert task.lengths and task.eval_size == 5 and task.classes == ("a", "b", "c") and task.input_size == 2
  (x, lengths), y = task.batch(task.data["train"], jax.random.key(0), 4)
  assert x.shape == (4, 6, 2) and lengths.shape == y.shape == (4,)
  state, loss = run.train_step(run.init_state(), task.data["train"])
  assert np.isfinite(float(loss)) and int(state.step) == 1
  params = state.params
  # The readout of a padded batch equals the shortest sequence (2 of 6 steps) run alone, unpadded.
  data = task.data["val"]
  logits = run.model.apply(params, (data["x"], data["lengths"]))
  alone = model_lib.make_model(cfg.model, task._replace(lengths=False))
  assert int(data["lengths"][0]) == 2
  np.testing.assert_allclose(alone.apply(params, data["x"][:1, :2]), logits[:1], rtol=1e-5, atol=1e-6)
  # The held-out loss and accuracy cover the 5 test examples once (batch 4: a padded second chunk).
  labels = np.asarray(data["y"])
  logp = np.asarray(jax.nn.log_softmax(logits.astype(jnp.float32)))
  np.testing.assert_allclose(float(run.evaluate(params, data)), -logp[np.arange(5), labels].mean(), rtol=1e-5)
  acc = float(run.eval_metrics(params, data)["accuracy"])
  assert acc == pytest.approx((logp.argmax(-1) == labels).mean())
  # The task's extra at the end of a run: the confusion matrix of the whole held-out split.
  assert tasks.spec("ucr").finish is base.classifier_finish
  files = base.classifier_finish(run, params, tmp_path, plot=False)
  conf = json.loads((tmp_path / "confusion.json").read_text())
  assert files == {"confusion": str(tmp_path / "confusion.json")}
  assert conf["classes"] == ["a", "b", "c"] and np.sum(conf["matrix"]) == 5 and conf["accuracy"] == pytest.approx(acc)
  np.testing.assert_array_equal(np.diag(conf["matrix"]), [np.sum((logp.argmax(-1) == labels) & (labels == c))
                                                         for c in range(3)])
  np.testing.assert_array_equal(report.confusion_matrix([0, 1, 1, 2], [0, 2, 1, 2], 3),
                                [[1, 0, 0], [0, 1, 1], [0, 0, 1]])


@pytest.mark.skipif(not HAS_AEON, reason="aeon's data files are not installed (pip install --no-deps aeon)")
def test_aeon_shipped_datasets_and_references():
  train, test, classes = ucr.load("JapaneseVowels")
  assert train["x"].shape == (270, 29, 12) and test["x"].shape == (370, 29, 12) and len(classes) == 9
  assert train["lengths"].min() == 7 and max(train["lengths"].max(), test["lengths"].max()) == 29
  assert np.bincount(train["y"]).tolist() == [30] * 9
  train, test, classes = ucr.load("GunPoint")
  assert train["x"].shape == (50, 150, 1) and test["x"].shape == (150, 150, 1) and (train["lengths"] == 150).all()
  assert ucr.reference_accuracy("GunPoint") == pytest.approx(0.995, abs=1e-3)
  assert ucr.references(ucr.Config(name="ucr", dataset="ItalyPowerDemand")) == pytest.approx(
      {"ref_InceptionTime": 0.960, "ref_HC2": 0.963}, abs=1e-3)
  assert ucr.reference_accuracy("JapaneseVowels") is None  # multivariate: not in the univariate results


@pytest.mark.skipif(not HAS_DATA, reason="the [data] extra is not installed")
def test_mnist1d_is_generated_in_memory_without_touching_global_rngs():
  np.random.seed(7)
  random.seed(7)
  want = np.random.get_state()[1].copy(), random.getstate()
  train, test = mnist1d.load(100, 42)
  assert np.array_equal(np.random.get_state()[1], want[0]) and random.getstate() == want[1]
  assert train["x"].shape == (80, 40, 1) and test["x"].shape == (20, 40, 1) and train["x"].dtype == np.float32
  assert set(train["y"].tolist()) <= set(range(10)) and (train["lengths"] == 40).all()
  again, _ = mnist1d.load.__wrapped__(100, 42)
  np.testing.assert_array_equal(again["x"], train["x"])  # deterministic for a seed


@pytest.mark.skipif(not HAS_DATA, reason="the [data] extra is not installed")
@pytest.mark.parametrize("layout, shape", [("rows", (8, 8)), ("pixels", (64, 1))])
def test_sklearn_digits_layouts_and_stratified_split(layout, shape):
  train, test = sklearn_digits.load(layout, 0.25, 0)
  assert train["x"].shape[1:] == test["x"].shape[1:] == shape
  assert len(train["y"]) + len(test["y"]) == 1797 and 0.0 <= train["x"].min() and train["x"].max() <= 1.0
  per_class = np.bincount(test["y"]) / (np.bincount(test["y"]) + np.bincount(train["y"]))
  np.testing.assert_allclose(per_class, 0.25, atol=0.01)


@pytest.mark.skipif(not HAS_DATA, reason="the [data] extra is not installed")
@pytest.mark.parametrize("name, task_cfg", [("mnist1d", {"num_samples": 40}), ("sklearn_digits", {})])
def test_dataset_task_takes_a_train_step(name, task_cfg):
  run = step.build(config.from_dict({**TINY, "task": {"name": name, **task_cfg}}))
  state = run.init_state()
  new, loss = run.train_step(state, run.task.data["train"])
  assert np.isfinite(float(loss)) and int(new.step) == 1
  assert run.task.output_size == 10 and not run.task.lengths and run.task.eval_size == len(run.task.data["val"]["y"])


def test_a_new_task_is_one_file(tmp_path, monkeypatch):
  """The training guide's example task (docs/training.md), dropped into the package's path, is found by the
  registry and validated by the config like a shipped one (nothing else names it)."""
  import re
  guide = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "training.md").read_text()
  source = next(b for b in re.findall(r"```python\n(.*?)```", guide, flags=re.S) if "my_task" in b)
  (tmp_path / "my_task.py").write_text(source)
  monkeypatch.setattr(tasks, "__path__", list(tasks.__path__) + [str(tmp_path)])
  monkeypatch.setattr(tasks, "TASKS", tasks._discover())  # pylint: disable=protected-access
  monkeypatch.delitem(sys.modules, "jaxrnn.train.tasks.my_task", raising=False)
  assert "my_task" in tasks.TASKS
  cfg = config.from_dict({"task": {"name": "my_task", "length": 4}})
  task = tasks.make_task(cfg.task)
  assert task.data["train"]["x"].shape == (512, 4, 1) and task.classes == ("neg", "pos") and task.eval_size == 128
  with pytest.raises(config.ConfigError, match="task.seq_len is not a key of task 'my_task'"):
    config.from_dict({"task": {"name": "my_task", "seq_len": 4}})


def test_run_dirs_of_the_shared_task_section_still_load(tmp_path):
  """config.json of runs written when every task's keys sat in one [task] table: the task's own keys are kept."""
  old = {"task": {"name": "adding", "seq_len": 6, "min_len": 1, "corpus_chars": 1000000, "val_fraction": 0.1},
         "model": {"cell": "gru"}}
  (tmp_path / "config.json").write_text(json.dumps(old))
  cfg = rundir.load_config(tmp_path)
  assert cfg.task == tasks.TASKS["adding"].config(name="adding", seq_len=6) and cfg.model.cell == "gru"


def test_missing_data_packages_name_their_extra(monkeypatch):
  monkeypatch.setitem(sys.modules, "mnist1d", None)
  with pytest.raises(ImportError, match=r"^task 'mnist1d' needs mnist1d: pip install 'jaxrnn\[data\]'$"):
    mnist1d.load.__wrapped__(100, 0)
  monkeypatch.setitem(sys.modules, "sklearn", None)
  with pytest.raises(ImportError, match=r"^task 'sklearn_digits' needs scikit-learn: pip install 'jaxrnn\[data\]'$"):
    sklearn_digits.load.__wrapped__("rows", 0.25, 0)
  monkeypatch.setattr(ucr.importlib.util, "find_spec", lambda name: None)
  with pytest.raises(ImportError, match=r"needs aeon: pip install 'jaxrnn\[ucr\]'$"):
    ucr.load.__wrapped__("GunPoint", "")
