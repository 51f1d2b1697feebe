"""``benchmarks/gpu.py --smoke``: the GPU benchmark's every table and column at a tiny size on CPU, in a fresh
process as it is run, so that the one command prepared for a GPU machine is known to work before it gets one."""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
CUDA_ONLY = {"kernel=cudnn", "jax.experimental.rnn", "torch cuDNN"}


def test_smoke_run_writes_checked_tables(tmp_path):
  env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "benchmarks/gpu.py", "--smoke", "--out", str(tmp_path)], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  report = json.loads((tmp_path / "gpu.json").read_text())
  assert report["smoke"] and not report["skipped_rows"]
  tables = {t["title"].split(":")[0]: t for t in report["tables"]}
  assert set(tables) == {"LSTM and GRU", "Linear recurrences", "h_t = a_t h_{t-1} + b_t alone"}
  for table in tables.values():
    for row in table["rows"]:
      for name, entry in row["columns"].items():
        if name in CUDA_ONLY:
          assert entry["status"] == "n/a on cpu", (row["name"], name, entry)
        else:  # checked against the row's reference before it was timed
          assert entry["status"] == "ok" and entry["rel_err"] < 0.1 and entry["compile_s"] > 0, entry
          assert entry["median_ms"] > 0 and entry["repeats"] >= 1, entry
  assert tables["LSTM and GRU"]["rows"][0]["dtype"] == "bfloat16"
  lstm = tables["LSTM and GRU"]["rows"][0]["columns"]
  assert {"step scan", "jaxrnn default (fused)", "fused hoist off", "fused unroll 1", "flax nn.RNN"} <= set(lstm)
  assert "kernel=pallas" in tables["Linear recurrences"]["rows"][0]["columns"]
  markdown = (tmp_path / "gpu.md").read_text()
  assert "n/a on cpu" in markdown and "Compile seconds" in markdown
