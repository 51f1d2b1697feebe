"""Data-parallel training (jaxrnn.train.distributed) on simulated CPU devices and on two real processes.

Every check runs in fresh subprocesses (tests/distributed_worker.py), since the number of devices is fixed when a
process starts JAX and ``jax.distributed.initialize`` cannot be undone; this process's JAX is untouched.
"""

import os
import pathlib
import socket
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "distributed_worker.py"
TIMEOUT = 300  # seconds per subprocess: generous for a loaded 2-core machine; a hang fails instead of blocking


def _start(mode, out, devices, *args):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
  # Simulated CPU devices; LLVM's optimizations off (compiling, not running, is what these tiny checks spend); on a
  # loaded machine a device thread may wait long for its turn at a collective: let XLA wait rather than abort.
  env["XLA_FLAGS"] = (f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices} "
                      "--xla_backend_optimization_level=0 --xla_cpu_collective_call_terminate_timeout_seconds=600 "
                      "--xla_cpu_collective_call_warn_stuck_timeout_seconds=120").strip()
  return subprocess.Popen([sys.executable, str(WORKER), mode, str(out), *map(str, args)], env=env, cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc, name):
  try:
    output, _ = proc.communicate(timeout=TIMEOUT)
  except subprocess.TimeoutExpired:
    proc.kill()
    output, _ = proc.communicate()
    pytest.fail(f"{name} did not finish in {TIMEOUT} s; its output ends:\n{output[-4000:]}")
  assert proc.returncode == 0, f"{name} failed (exit {proc.returncode}); its output ends:\n{output[-6000:]}"
  proc.stdout_text = output


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_eight_devices_equal_one_and_resume_on_four(tmp_path):
  # 8 simulated devices: 3 sharded steps == 3 single-device steps (params, allclose), and a run stopped at step 3.
  _finish(_start("sharded_step", tmp_path, 8), "8-device worker")
  # 4 devices: the 8-device checkpoint resumes and ends (step 6) with the uninterrupted run's params.
  _finish(_start("resume4", tmp_path, 4), "4-device resume worker")


def test_two_processes_equal_one_process(tmp_path):
  # Two processes on 127.0.0.1 (2 CPU devices each, gloo collectives) run `jaxrnn train ... --coordinator-address
  # --num-processes --process-id` for 3 steps; process 0 checks the params against the single-process run.
  port = _free_port()
  procs = [_start("multiprocess", tmp_path, 2, i, 2, port) for i in range(2)]
  try:
    for i, p in enumerate(procs):
      _finish(p, f"process {i}")
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  assert sorted(p.name for p in tmp_path.glob("done_*")) == ["done_0", "done_1"]
  assert "3 steps) in" in procs[0].stdout_text and "2 process(es)" in procs[0].stdout_text  # process 0 printed
  assert "training" not in procs[1].stdout_text  # only process 0 prints
  written = sorted(p.name for p in (tmp_path / "run").iterdir())
  assert written == ["checkpoints", "config.json", "loss_curve.png", "metrics.jsonl", "samples.txt"], written
  assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 4  # 3 train rows + 1 eval row


def test_cli_needs_all_multiprocess_flags(capsys):
  from jaxrnn import cli
  assert cli.main(["train", "--num-processes", "2", "--no-progress"]) == 2  # before JAX starts any runtime
  assert "needs --num-processes and --process-id" in capsys.readouterr().err


def test_more_devices_than_there_are_is_a_config_error():
  from jaxrnn.train import config, distributed
  with pytest.raises(config.ConfigError, match=r"distributed.data_parallel = 64 but there are only \d+ devices"):
    distributed.make_mesh(64)
