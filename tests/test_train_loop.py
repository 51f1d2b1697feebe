"""The training loop: loss decreases, exact resume, deterministic sampling, tasks' data, import hygiene."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxrnn.train import config, loop, sampling, step
from jaxrnn.train.tasks import adding, charlm, copy

TINY_LM = {"task": {"name": "charlm", "seq_len": 6, "corpus_chars": 5000},
           "model": {"hidden_size": 5, "embed_size": 3},
           "train": {"batch_size": 3, "steps": 6, "log_every": 1, "eval_every": 3, "eval_batches": 2,
                     "checkpoint_every": 2, "keep_checkpoints": 2}}


def test_loss_decreases_on_adding():
  cfg = config.from_dict({"task": {"name": "adding", "seq_len": 6}, "model": {"cell": "gru", "hidden_size": 5},
                          "optimizer": {"lr": 1e-2, "schedule": "constant"},
                          "train": {"batch_size": 3, "steps": 40}})
  run = loop.build(cfg)
  state, data = run.init_state(), run.task.data["train"]
  before = float(run.evaluate(state.params, data))
  for _ in range(cfg.train.steps):
    state, _ = run.train_step(state, data)
  after = float(run.evaluate(state.params, data))
  assert after < 0.5 * before


def test_resume_equals_uninterrupted(tmp_path):
  # dropout: the RNG must resume too; log_every=4 with a stop at 3: the partial loss window resumes with the run.
  cfg = config.from_dict(TINY_LM, ["model.layers=2", "model.dropout=0.2", "train.log_every=4"])
  run = step.build(cfg)  # one explicit run object: built once, compiled once
  full = loop.train(cfg, tmp_path / "full", run=run, progress=False, plot=False)
  part = loop.train(cfg, tmp_path / "part", run=run, progress=False, plot=False, stop_at=3)  # "killed" after 3
  assert int(part.state.step) == 3
  compiled = run.train_step._cache_size()
  resumed = loop.train(cfg, tmp_path / "part", run=run, progress=False, plot=False)
  assert int(resumed.state.step) == int(full.state.step) == 6
  assert run.train_step._cache_size() == compiled  # a restored state does not compile the step again
  for a, b in zip(jax.tree_util.tree_leaves(full.state), jax.tree_util.tree_leaves(resumed.state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  rows = lambda d: [json.loads(l) for l in (d / "metrics.jsonl").read_text().splitlines()]
  assert rows(tmp_path / "full") == rows(tmp_path / "part")
  assert [r["step"] for r in rows(tmp_path / "full") if r["split"] == "train"] == [4, 6]
  steps = sorted(int(p.name) for p in (tmp_path / "part" / "checkpoints").iterdir() if p.name.isdigit())
  assert steps == [4, 6]  # keep the last k = 2


def test_resume_refuses_another_config(tmp_path):
  loop.train(config.from_dict(TINY_LM), tmp_path, progress=False, plot=False, stop_at=2)
  with pytest.raises(config.ConfigError, match="model.hidden_size = 5, not 4"):
    loop.train(config.from_dict(TINY_LM, ["model.hidden_size=4"]), tmp_path, progress=False)


def test_sample_is_deterministic_for_a_seed(tmp_path):
  cfg = config.from_dict(TINY_LM)
  run = step.build(cfg)
  res = loop.train(cfg, tmp_path, run=run, progress=False, plot=False)
  run, state = loop.restore(tmp_path, run=run)
  loop_sample = sampling.sample_text
  kw = dict(prompt="import ", length=20, temperature=1.0, top_k=5)
  a = loop_sample(run, state.params, seed=1, **kw)
  assert a == loop_sample(run, state.params, seed=1, **kw)
  assert a != loop_sample(run, state.params, seed=2, **kw)
  assert a.startswith("import ") and len(a) == 27
  greedy = loop_sample(run, state.params, prompt="x", length=8, temperature=0.0)
  assert greedy == loop_sample(run, state.params, prompt="x", length=8, temperature=0.0, seed=5)
  # A lower temperature is closer to greedy; temperatures share one compiled sampler.
  compiled = run.sample._cache_size()
  for t in (0.5, 1e-4):
    loop_sample(run, state.params, prompt="x", length=8, temperature=t)
  assert run.sample._cache_size() == compiled
  assert loop_sample(run, state.params, prompt="x", length=8, temperature=1e-4) == greedy
  assert pathlib_text(res.samples).startswith("def ")


def pathlib_text(path):
  with open(path) as f:
    return f.read()


def test_adding_data():
  x, y = adding.batch((), jax.random.key(0), 3, seq_len=6)
  assert x.shape == (3, 6, 2) and y.shape == (3,)
  markers = np.asarray(x[..., 1])
  assert (markers[:, :3].sum(1) == 1).all() and (markers[:, 3:].sum(1) == 1).all()
  np.testing.assert_allclose(y, (x[..., 0] * x[..., 1]).sum(1), rtol=1e-6)
  assert abs(adding.task(6).baseline - 0.1667) < 1e-3


def test_copy_data():
  x, y = copy.batch((), jax.random.key(0), 2, delay=5)
  assert x.shape == y.shape == (2, 25)
  np.testing.assert_array_equal(x[:, :10], y[:, -10:])
  assert (x[:, 14] == copy.DELIM).all() and (y[:, :15] == 0).all()
  assert abs(copy.task(100).baseline - 10 * np.log(8) / 120) < 1e-9


def test_charlm_corpus_and_split():
  task = charlm.task(6, corpus_chars=5000, val_fraction=0.1)
  train, val = np.asarray(task.data["train"]), np.asarray(task.data["val"])
  assert len(train) + len(val) == 5000 and len(val) == 500 and train.max() < 128
  assert charlm.decode(np.concatenate([train, val])) == charlm.decode(charlm.corpus(5000))
  x, y = task.batch(task.data["train"], jax.random.key(0), 2)
  np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
  assert 0 < task.baseline < np.log(128)


def test_core_import_stays_light():
  code = ("import sys, jaxrnn; "
          "print(sorted(m for m in ('orbax', 'matplotlib', 'tqdm', 'jaxrnn.train') if m in sys.modules))")
  assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
