"""Subprocess worker of tests/test_distributed.py: each check runs in its own process with its own devices.

``python tests/distributed_worker.py MODE OUT_DIR [PROCESS_ID NUM_PROCESSES PORT]``, with ``XLA_FLAGS`` set by the
caller; raises (exit status 1) if a check fails.
"""

import json
import pathlib
import sys

# A tiny charlm (rows of a data array, an embedding gather) with dropout (the mask must not depend on the mesh).
CFG = {"task": {"name": "charlm", "seq_len": 5, "corpus_chars": 5000},
       "model": {"cell": "irnn", "hidden_size": 8, "embed_size": 3, "dropout": 0.2},
       "optimizer": {"lr": 1e-2},
       "train": {"batch_size": 8, "steps": 6, "log_every": 1, "eval_every": 100, "eval_batches": 1,
                 "checkpoint_every": 3, "keep_checkpoints": 1}}
TOL = dict(rtol=2e-5, atol=1e-6)


def _leaves(tree):
  import jax
  import numpy as np
  return [np.asarray(x.addressable_data(0)) for x in jax.tree_util.tree_leaves(tree)]


def _reference(run, state, steps):
  """The states after each of ``steps`` plain single-device jitted steps (the whole global batch each)."""
  data, states = run.task.data["train"], []
  for _ in range(steps):
    state, _ = run.train_step(state, data)
    states.append(state)
  return states


def sharded_step(out):
  """8 devices: 3 sharded steps equal 3 single-device steps; a run stopped ("killed") at step 3 on 8 devices."""
  import jax
  import numpy as np
  from jaxrnn.train import config, distributed, loop
  assert jax.device_count() == 8, jax.devices()
  cfg = config.from_dict(CFG)
  run = loop.build(cfg)
  par = distributed.parallelize(run)
  assert par.mesh.shape == {"data": 8}
  state = par.init_state()
  ref = _reference(run, par.local(state), cfg.train.steps)  # on the first device alone
  np.savez(out / "uninterrupted.npz", *_leaves(ref[-1]))
  for _ in range(3):
    state, loss = par.train_step(state, run.task.data["train"])
  sharding = state.params.w_out.sharding
  assert sharding.is_fully_replicated and len(sharding.device_set) == 8
  for a, b in zip(_leaves(state), _leaves(ref[2])):
    np.testing.assert_allclose(a, b, **TOL)
  try:
    distributed.parallelize(loop.build(config.from_dict(CFG, ["train.batch_size=6"])))
    raise AssertionError("a batch of 6 on 8 devices must be refused")
  except config.ConfigError as e:
    assert "train.batch_size = 6 must be a multiple of the 8 data-parallel devices" in str(e), e
  part = loop.train(cfg, out / "run", run=run, parallel=par, progress=False, plot=False, stop_at=3)
  assert int(par.local(part.state.step)) == 3


def resume4(out):
  """4 devices: resume the run stopped on 8 devices; it ends with the uninterrupted run's params."""
  import jax
  import numpy as np
  from jaxrnn.train import config, loop
  assert jax.device_count() == 4, jax.devices()
  res = loop.train(config.from_dict(CFG), out / "run", progress=False, plot=False)
  assert len(res.state.params.w_out.sharding.device_set) == 4 and res.summary["steps"] == 6
  full = np.load(out / "uninterrupted.npz")
  for i, a in enumerate(_leaves(res.state)):
    np.testing.assert_allclose(a, full[f"arr_{i}"], **TOL)
  rows = [json.loads(l) for l in (out / "run" / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows if r["split"] == "train"] == [1, 2, 3, 4, 5, 6]


def _toml(cfg):
  return "".join(f"[{section}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
                 for section, values in cfg.items())


def multiprocess(out, process_id, num_processes, port):
  """One of two processes (2 devices each): ``jaxrnn train`` with the multi-process flags; the params of its last
  checkpoint equal the single-process run on the same global batch."""
  import jax
  import numpy as np
  from jaxrnn import cli
  from jaxrnn.train import checkpoint, config, distributed, loop
  (out / f"cfg_{process_id}.toml").write_text(_toml(CFG))
  status = cli.main(["train", str(out / f"cfg_{process_id}.toml"), "--set", "train.steps=3", "--run-dir",
                     str(out / "run"), "--no-progress", "--coordinator-address", f"127.0.0.1:{port}",
                     "--num-processes", str(num_processes), "--process-id", str(process_id)])
  assert status == 0 and jax.process_count() == num_processes and jax.device_count() == 2 * num_processes
  cfg = config.from_dict(CFG, ["train.steps=3"])
  run = loop.build(cfg)
  par = distributed.parallelize(run)  # the same mesh and shardings as the run used
  init = par.local(par.init_state())
  ckpt = checkpoint.Checkpointer(out / "run", 1)  # every process takes part in restoring, as in saving
  state = ckpt.restore(par.restore_target())
  ckpt.close()
  assert int(par.local(state.step)) == 3 and len(state.params.w_out.sharding.device_set) == 2 * num_processes
  if process_id == 0:  # the single-process run, on this process's first device alone
    for a, b in zip(_leaves(state), _leaves(_reference(run, init, 3)[-1])):
      np.testing.assert_allclose(a, b, **TOL)
  (out / f"done_{process_id}").write_text("ok")
  jax.distributed.shutdown()


if __name__ == "__main__":
  mode, out = sys.argv[1], pathlib.Path(sys.argv[2])
  if mode == "multiprocess":
    multiprocess(out, int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
  else:
    {"sharded_step": sharded_step, "resume4": resume4}[mode](out)
