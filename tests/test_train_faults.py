"""Training under faults: NaN/Inf steps, SIGKILL (also mid-checkpoint), corrupted checkpoints, a full disk, and
bit-identical determinism for a config and seed."""

import errno
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxrnn.train import checkpoint as checkpoint_lib
from jaxrnn.train import config, loop
from jaxrnn.train import model as model_lib
from jaxrnn.train import step as step_lib
from jaxrnn.train.tasks import make_task

ROOT = pathlib.Path(__file__).resolve().parent.parent

SMALL = {"task": {"name": "adding", "seq_len": 4}, "model": {"cell": "simple_rnn", "hidden_size": 3},
         "train": {"batch_size": 2, "steps": 8, "log_every": 4, "eval_every": 100, "eval_batches": 1,
                   "checkpoint_every": 2, "keep_checkpoints": 2}}


def leaves_equal(a, b):
  la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
  assert len(la) == len(lb)
  for x, y in zip(la, lb):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def first_inputs(cfg, steps):
  """``inputs[0, 0, 0]`` of the batch of each step 1..steps, as the train step draws it."""
  task = make_task(cfg.task)
  _, train_key, _ = step_lib.run_keys(cfg.train.seed)
  out = []
  for s in range(steps):
    k_data, _ = jax.random.split(jax.random.fold_in(train_key, s))
    out.append(float(task.batch(task.data["train"], k_data, cfg.train.batch_size)[0][0, 0, 0]))
  return out


@pytest.fixture
def poison(monkeypatch):
  """``poison(values)``: models built from now on have a NaN loss on batches whose ``inputs[0, 0, 0]`` is in values."""
  targets = []
  real = model_lib.make_model

  def make_model(cfg, task):
    m = real(cfg, task)

    def loss(params, inputs, batch_targets, key=None):
      out = m.loss(params, inputs, batch_targets, key)
      hit = jnp.any(jnp.abs(inputs[0, 0, 0] - jnp.asarray(targets, inputs.dtype)) < 1e-7)
      return jnp.where(hit, jnp.nan, out)
    return m._replace(loss=loss)

  monkeypatch.setattr(model_lib, "make_model", make_model)
  return targets.extend


def test_nonfinite_stops_naming_the_step_then_skip_resumes(tmp_path, poison):
  cfg = config.from_dict(SMALL)
  xs = first_inputs(cfg, 8)
  poison([xs[4]])  # step 5 (batch of state.step 4)
  with pytest.raises(FloatingPointError, match=r"non-finite loss or gradient \(loss = nan\) at step 5;"):
    loop.train(cfg, tmp_path, progress=False, plot=False)
  ckpt = checkpoint_lib.Checkpointer(tmp_path, 2)
  assert ckpt.all_steps() == [2, 4]  # checked before step 6's checkpoint: nothing after the bad step
  state = ckpt.restore(loop.build(cfg).init_state())
  ckpt.close()
  assert int(state.step) == 4 and all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(state.params))
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert max(r["step"] for r in rows) == 4

  # Same run dir with on_nonfinite = "skip": resumes at 4, skips step 5's update, finishes.
  res = loop.train(config.from_dict(SMALL, ['train.on_nonfinite="skip"']), tmp_path, progress=False, plot=False)
  assert int(res.state.step) == 8 and res.summary["skipped_steps"] == 1
  assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(res.state.params))
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert {"step": 5, "split": "skipped", "loss": None} in rows


def test_guard_keeps_state_bit_identical_on_nonfinite():
  old = step_lib.TrainState(jnp.int32(3), {"w": jnp.ones(2)}, ())
  new = step_lib.TrainState(jnp.int32(4), {"w": jnp.full(2, 2.0)}, ())
  grads = {"w": jnp.array([1.0, jnp.inf])}
  for skip, step in ((False, 3), (True, 4)):
    state, loss = step_lib.guard_nonfinite(old, new, jnp.float32(0.5), grads, skip=skip)
    assert int(state.step) == step and np.isnan(loss)
    leaves_equal(state.params, old.params)
  state, loss = step_lib.guard_nonfinite(old, new, jnp.float32(0.5), {"w": jnp.ones(2)}, skip=False)
  leaves_equal(state, new)
  assert float(loss) == 0.5


def biggest_file(step_dir):
  return max((p for p in step_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_checkpoint_is_refused(tmp_path, damage):
  cfg = config.from_dict(SMALL)
  run = step_lib.build(cfg)  # one run object for the three calls: compiled once
  loop.train(cfg, tmp_path, run=run, progress=False, plot=False, stop_at=4)
  f = biggest_file(tmp_path / "checkpoints" / "4")
  data = bytearray(f.read_bytes())
  if damage == "flip":  # orbax alone would load this silently with a wrong value
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
  elif damage == "truncate":
    f.write_bytes(bytes(data[:len(data) // 2]))
  else:
    f.unlink()
  message = {"flip": "does not match its SHA-256", "truncate": "truncated", "delete": "is missing"}[damage]
  with pytest.raises(checkpoint_lib.CheckpointError, match=f"checkpoints/4 is damaged: .*{message}"):
    loop.train(cfg, tmp_path, run=run, progress=False, plot=False)
  with pytest.raises(checkpoint_lib.CheckpointError, match="refusing to load it"):
    loop.restore(tmp_path, run=run)


def fake_full_disk_save(self, step, *args, **kwargs):
  """orbax's save running out of space halfway: a partial temporary directory, then ENOSPC."""
  tmp = pathlib.Path(self.directory) / f"{step}.orbax-checkpoint-tmp-1234" / "default"
  tmp.mkdir(parents=True)
  (tmp / "partial").write_bytes(b"\0" * 10)
  raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def full_disk_manifest(step_dir, step):
  raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["orbax", "manifest"])
def test_disk_full_fails_loudly_and_keeps_previous(tmp_path, monkeypatch, where):
  cfg = config.from_dict(SMALL)
  run = step_lib.build(cfg)  # one run object for every call: compiled once
  full = loop.train(cfg, tmp_path / "full", run=run, progress=False, plot=False)
  run_dir = tmp_path / "run"
  loop.train(cfg, run_dir, run=run, progress=False, plot=False, stop_at=4)
  with monkeypatch.context() as m:
    if where == "orbax":
      m.setattr(ocp.CheckpointManager, "save", fake_full_disk_save)
    else:
      m.setattr(checkpoint_lib, "write_manifest", full_disk_manifest)
    with pytest.raises(checkpoint_lib.CheckpointError,
                       match=r"writing checkpoint step 6 .* No space left on device; the previous checkpoint "
                             r"\(step 4\) is intact") as e:
      loop.train(cfg, run_dir, run=run, progress=False, plot=False)
    assert e.value.errno == errno.ENOSPC
  assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["2", "4"]  # no partial leftovers
  _, state = loop.restore(run_dir, run=run)
  assert int(state.step) == 4
  # Space again: resumes from 4 and ends where an uninterrupted run ends.
  leaves_equal(loop.train(cfg, run_dir, run=run, progress=False, plot=False).state, full.state)


def test_same_config_and_seed_are_bit_identical(tmp_path, monkeypatch):
  cfg = config.from_dict(SMALL, ["model.cell=lstm", "optimizer.name=adamw"])
  a = loop.train(cfg, tmp_path / "a", progress=False, plot=False)
  b = loop.train(cfg, tmp_path / "b", progress=False, plot=False)  # built, traced and compiled again
  leaves_equal(a.state, b.state)
  assert (tmp_path / "a" / "metrics.jsonl").read_text() == (tmp_path / "b" / "metrics.jsonl").read_text()
  c = loop.train(config.from_dict(SMALL, ["model.cell=lstm", "optimizer.name=adamw", "train.seed=1"]),
                 tmp_path / "c", progress=False, plot=False)
  assert not np.array_equal(np.asarray(a.state.params.w_out), np.asarray(c.state.params.w_out))


# -- SIGKILL: the real command in subprocesses --------------------------------------------------------------------

TOML = """
[task]
name = "adding"
seq_len = 4
[model]
cell = "gru"
hidden_size = 3
[train]
batch_size = 2
steps = 10
log_every = 2
eval_every = 100
eval_batches = 1
checkpoint_every = 2
keep_checkpoints = 2
"""

# Runs `jaxrnn train` in this process after installing one fault: `slow` (each step sleeps, so that the test can
# SIGKILL it from outside), `orbax` (SIGKILL inside orbax's save, after the data is written to its temporary
# directory, before the rename) or `manifest` (SIGKILL halfway through writing the manifest).
KILLER = r"""
import os, signal, sys, time
mode = sys.argv[1]
from jaxrnn import cli
from jaxrnn.train import checkpoint, loop
if mode == "slow":
  build = loop.build
  def slow_build(cfg):
    run = build(cfg)
    def step(*a):
      time.sleep(0.25)
      return run.train_step(*a)
    return run._replace(train_step=step)
  loop.build = slow_build
elif mode == "orbax":
  from orbax.checkpoint._src.path import atomicity
  async def finalize(self):
    os.kill(os.getpid(), signal.SIGKILL)
  atomicity.AtomicRenameTemporaryPath.finalize = finalize
elif mode == "manifest":
  def write_manifest(step_dir, step):
    (step_dir / (checkpoint.MANIFEST + ".tmp")).write_text('{"format": "jaxrnn-checkpoint-man')
    os.kill(os.getpid(), signal.SIGKILL)
  checkpoint.write_manifest = write_manifest
sys.exit(cli.main(sys.argv[2:]))
"""


def complete_steps(run_dir):
  d = run_dir / "checkpoints"
  return sorted(int(p.name) for p in d.iterdir() if (p / checkpoint_lib.MANIFEST).is_file()) if d.is_dir() else []


def test_sigkill_anywhere_then_resume_equals_uninterrupted(tmp_path):
  cfg_path = tmp_path / "tiny.toml"
  cfg_path.write_text(TOML)
  # The five processes compile the same functions: share them through JAX's persistent compilation cache.
  env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jit"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  train = lambda d: ["train", str(cfg_path), "--run-dir", str(tmp_path / d), "--no-progress"]
  cli = [sys.executable, "-m", "jaxrnn.cli"]
  killer = lambda mode, d: [sys.executable, "-c", KILLER, mode] + train(d)
  popen = lambda cmd: subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

  # 1. SIGKILL from outside once the first checkpoint is complete.
  slow = popen(killer("slow", "run"))
  deadline = time.monotonic() + 120
  while not complete_steps(tmp_path / "run"):
    assert slow.poll() is None and time.monotonic() < deadline, slow.communicate()[0].decode()[-2000:]
    time.sleep(0.02)
  slow.send_signal(signal.SIGKILL)
  assert slow.wait() == -signal.SIGKILL
  resumed_from = complete_steps(tmp_path / "run")[-1]
  assert resumed_from < 10
  full = popen(cli + train("full"))  # uninterrupted, alongside the killed runs (compiled functions now cached)
  # 2. SIGKILL inside orbax's write of the next checkpoint: only its temporary directory exists.
  p = subprocess.run(killer("orbax", "run"), cwd=ROOT, env=env, capture_output=True, text=True)
  assert p.returncode == -signal.SIGKILL, p.stdout + p.stderr
  assert complete_steps(tmp_path / "run")[-1] == resumed_from
  assert any("tmp" in q.name for q in (tmp_path / "run" / "checkpoints").iterdir())
  # 3. SIGKILL while writing the manifest: the step directory exists, but it is not a complete checkpoint.
  p = subprocess.run(killer("manifest", "run"), cwd=ROOT, env=env, capture_output=True, text=True)
  assert p.returncode == -signal.SIGKILL, p.stdout + p.stderr
  assert complete_steps(tmp_path / "run")[-1] == resumed_from
  assert (tmp_path / "run" / "checkpoints" / str(resumed_from + 2)).is_dir()
  # 4. The plain command again: resumes from the last complete checkpoint and finishes.
  p = subprocess.run(cli + train("run"), cwd=ROOT, env=env, capture_output=True, text=True)
  assert p.returncode == 0 and f"resuming {tmp_path / 'run'} from step {resumed_from}" in p.stdout, p.stdout + p.stderr
  assert full.wait() == 0, full.communicate()[0].decode()
  assert complete_steps(tmp_path / "run") == complete_steps(tmp_path / "full") == [8, 10]
  _, a = loop.restore(tmp_path / "full")
  _, b = loop.restore(tmp_path / "run")
  assert int(a.step) == int(b.step) == 10
  leaves_equal(a, b)
  assert (tmp_path / "full" / "metrics.jsonl").read_text() == (tmp_path / "run" / "metrics.jsonl").read_text()
