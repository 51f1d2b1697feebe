"""jaxrnn on a GPU, against cuDNN, Flax and PyTorch: one command, at most 8 minutes, tables written to a folder.

On the GPU machine (nothing to install: jax with CUDA, flax and torch with CUDA are there), from the repository:

    PYTHONPATH=. python3 benchmarks/gpu.py --out /tmp/gpu

It first runs the tests that need a GPU to mean something (``tests/test_cudnn_lstm.py``: the cuDNN route of
``jaxrnn.lstm`` against the JAX path, values and gradients, lengths, reverse, stacks, bidirectional;
``tests/test_pallas_linear_recurrence.py``: the Pallas linear-recurrence kernel compiled by Triton), log in
``checks.log``, then times. ``--smoke`` runs every table at a tiny size on CPU in seconds (CI runs it); columns
that need CUDA then read ``n/a on cpu`` (the Pallas kernel runs in interpret mode there).

Tables (``gpu.md``, and every number in ``gpu.json``):

* LSTM and GRU at the CPU benchmark's sizes W1-W4 (``benchmarks/rnn_layers.py``) and a long sequence
  (B=16 T=16384 F=H=256), float32 and bfloat16 (inputs, weights and carry), with the columns: jaxrnn's scan of
  ``step``; its fused path (the default: ``unroll=None``, 8 steps per loop iteration on GPU); the fused path with
  the input projection in the loop (hoist off) and with ``unroll`` 1 and 4; ``kernel="cudnn"`` (LSTM, float32);
  ``jax.experimental.rnn.lstm`` itself (cuDNN); Flax ``nn.RNN`` (``OptimizedLSTMCell``, ``GRUCell``); PyTorch's
  cuDNN ``nn.LSTM``/``nn.GRU``. There is no Pallas LSTM/GRU kernel (yet): that column is absent from this table.
* The linear recurrences (``min_gru``, ``rg_lru``, ``lru``): the scan of ``step``, the associative scan (the
  default) and ``kernel="pallas"``; and ``h_t = a_t h_{t-1} + b_t`` alone: ``lax.scan``, associative scan and
  the Pallas kernel at several block sizes.

Training workloads time one forward and backward pass (``value_and_grad`` of ``sum(h^2)`` with respect to the
parameters and the inputs), the others the forward pass. Before timing, every column's output (the input
gradient when training) is checked against the row's reference, jaxrnn's scan of ``step`` in float32 on the same
(rounded) weights and inputs: a column that disagrees (relative error ``|out - ref| / |ref|`` over 1e-2 in
float32, 1e-1 in bfloat16) is reported and not timed. Compile time (``jit(...).lower(...).compile()``) is
reported apart from the run time (median of repeats, all columns of a row interleaved, each call waited for).

Time budget: ``--budget`` seconds (default 420) for the whole run, shared out over the rows still to run; a
column that would start after its row's share is skipped, and the tables say so ("skipped: time").
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from typing import Any, Callable, Dict, List, NamedTuple, Optional

# Memory on demand, not 75% of the GPU at start: PyTorch runs in this process and the tests in another.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jaxrnn  # noqa: E402
from benchmarks import rnn_layers  # noqa: E402
from jaxrnn.kernels import cudnn_lstm  # noqa: E402
from jaxrnn.kernels import pallas_linear_recurrence  # noqa: E402

WORKLOADS = dict(rnn_layers.WORKLOADS, LONG=(16, 16384, 256, 256, True))  # (B, T, F, H, train)
SMOKE_SIZE = (2, 6, 3, 4)  # B, T, F, H of every row in --smoke
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
TOLERANCE = {"float32": 1e-2, "bfloat16": 1e-1}
GPU_TESTS = ("tests/test_cudnn_lstm.py", "tests/test_pallas_linear_recurrence.py")
NA_CPU = "n/a on cpu"


class NotApplicable(Exception):
  """A column that does not apply to a row (the message says why)."""


class Column(NamedTuple):
  name: str
  build: Callable[[], Callable[[], Any]]  # -> run(): one call, waited for; returns the compared output
  compile_s: Optional[Callable[[], float]] = None


# ---------------------------------------------------------------------------------------------------- helpers
def _on_gpu() -> bool:
  return jax.default_backend() == "gpu"


def _rel_err(out: np.ndarray, ref: np.ndarray) -> float:
  out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
  if out.shape != ref.shape:
    return math.inf
  if not np.all(np.isfinite(out)):
    return math.inf
  return float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-30))


def _jax_column(forward: Callable, params: Any, xs: jax.Array, train: bool) -> Callable[[], Any]:
  """Compiles ``forward(params, xs) -> hs [B, T, H]`` (forward, or value_and_grad of sum(hs^2) when training);
  returns ``run`` with the compile time in ``run.compile_s`` and ``run.to_host`` (its result as a NumPy array)."""
  if train:
    def loss(p, x):
      return jnp.sum(jnp.square(forward(p, x).astype(jnp.float32)))
    fn = jax.value_and_grad(loss, argnums=(0, 1))
    pick = lambda out: out[1][1]  # the input gradient
  else:
    fn = forward
    pick = lambda out: out
  start = time.perf_counter()
  compiled = jax.jit(fn).lower(params, xs).compile()
  compile_s = time.perf_counter() - start

  def run():
    return pick(jax.block_until_ready(compiled(params, xs)))

  run.compile_s = compile_s
  run.to_host = np.asarray
  return run


# ---------------------------------------------------------------------------------------------------- LSTM / GRU
def rnn_columns(cell_name: str, w: Dict[str, np.ndarray], xs: np.ndarray, dtype: str, train: bool) -> List[Column]:
  H = w["w_hh"].shape[1]
  F = w["w_ih"].shape[1]
  dt = DTYPES[dtype]
  params = rnn_layers.jaxrnn_params(cell_name, w)
  x = jnp.asarray(xs)
  factory = jaxrnn.lstm if cell_name == "lstm" else jaxrnn.gru
  cell = factory(H, param_dtype=dt)

  def jaxrnn_col(name, **kw):
    def build():
      forward = lambda p, x: jaxrnn.unroll(cell, p, None, x, **kw)[1]
      return _jax_column(forward, params, x, train)
    return Column(name, build)

  def cudnn_lstm_only(route):
    """Raises NotApplicable unless this is a float32 LSTM on a GPU (what JAX's cuDNN LSTM runs)."""
    if cell_name != "lstm":
      raise NotApplicable(f"{route}: LSTM only")
    if not _on_gpu():
      raise NotApplicable(NA_CPU)
    if dtype != "float32":
      raise NotApplicable("float32 only (jax#18867)")

  def kernel_cudnn():
    cudnn_lstm_only("cuDNN route")
    forward = lambda p, x: jaxrnn.unroll(cell, p, None, x, kernel="cudnn")[1]
    return _jax_column(forward, params, x, train)

  def experimental_rnn():
    cudnn_lstm_only("jax.experimental.rnn")
    from jax.experimental import rnn
    weights = cudnn_lstm.pack(params)
    B, T = xs.shape[:2]

    def forward(wts, x):
      h0 = jnp.zeros((1, B, H), x.dtype)
      return rnn.lstm(x, h0, h0, wts, jnp.full((B,), T, jnp.int32), input_size=F, hidden_size=H, num_layers=1,
                      dropout=0.0, bidirectional=False)[0]
    return _jax_column(forward, weights, x, train)

  def flax_rnn():
    import flax.linen as nn
    inner = (nn.OptimizedLSTMCell(H, dtype=dt, param_dtype=dt) if cell_name == "lstm"
             else nn.GRUCell(H, dtype=dt, param_dtype=dt))
    model = nn.RNN(inner)
    variables = rnn_layers._flax_params(cell_name, None, w)
    return _jax_column(lambda v, x: model.apply(v, x), variables, x, train)

  def torch_cudnn():
    if not _on_gpu():
      raise NotApplicable(NA_CPU)
    try:
      import torch
    except ImportError:
      raise NotApplicable("torch is not installed") from None
    if not torch.cuda.is_available():
      raise NotApplicable("torch has no CUDA here")
    tdt = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    m = (torch.nn.LSTM if cell_name == "lstm" else torch.nn.GRU)(F, H, batch_first=True)
    with torch.no_grad():
      for k, name in (("w_ih", "weight_ih_l0"), ("w_hh", "weight_hh_l0"), ("b_ih", "bias_ih_l0"),
                      ("b_hh", "bias_hh_l0")):
        getattr(m, name).copy_(torch.from_numpy(np.asarray(w[k], np.float32)))
    m = m.to("cuda", tdt)
    m.flatten_parameters()  # one contiguous weight buffer, else cuDNN compacts the weights at every call
    xt = torch.from_numpy(np.asarray(xs, np.float32)).to("cuda", tdt)
    start = time.perf_counter()

    def run():  # like the JAX columns: the result stays on the device; the check copies it out, untimed
      if train:
        x_ = xt.detach().requires_grad_(True)
        out, _ = m(x_)
        (out.float() ** 2).sum().backward()
        m.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        return x_.grad
      with torch.no_grad():
        out = m(xt)[0]
        torch.cuda.synchronize()
        return out

    run()  # the first call (cuDNN plans): reported as its compile time
    run.compile_s = time.perf_counter() - start
    run.to_host = lambda t: t.float().cpu().numpy()
    return run

  return [
      jaxrnn_col("jaxrnn default (fused)"),
      jaxrnn_col("step scan", mode="step"),
      Column("kernel=cudnn", kernel_cudnn),
      Column("jax.experimental.rnn", experimental_rnn),
      Column("torch cuDNN", torch_cudnn),
      Column("flax nn.RNN", flax_rnn),
      jaxrnn_col("fused hoist on", hoist=True),
      jaxrnn_col("fused hoist off", hoist=False),
      jaxrnn_col("fused unroll 1", unroll=1),
      jaxrnn_col("fused unroll 4", unroll=4),
  ]


def rnn_reference(cell_name, w, xs, train):
  """jaxrnn's scan of step in float32 on the row's (rounded) weights and inputs."""
  w32 = {k: np.asarray(v, np.float32) for k, v in w.items()}
  params = rnn_layers.jaxrnn_params(cell_name, w32)
  cell = (jaxrnn.lstm if cell_name == "lstm" else jaxrnn.gru)(w32["w_hh"].shape[1])
  forward = lambda p, x: jaxrnn.unroll(cell, p, None, x, mode="step")[1]
  return _jax_column(forward, params, jnp.asarray(np.asarray(xs, np.float32)), train)()


# ---------------------------------------------------------------------------------------------------- linear
LINEAR_CELLS = {
    "min_gru": lambda H, dt: jaxrnn.min_gru(H, log_space=False, param_dtype=dt),
    "rg_lru": lambda H, dt: jaxrnn.rg_lru(H, param_dtype=dt),
    "lru": lambda H, dt: jaxrnn.lru(H, param_dtype=dt),
}


def linear_columns(cell_name, xs, dtype, train):
  H = xs.shape[-1]
  cell = LINEAR_CELLS[cell_name](H, DTYPES[dtype])
  params = jax.tree.map(lambda a: a.astype(DTYPES[dtype]), cell.init(jax.random.key(0), xs.shape[-1]))
  x = jnp.asarray(xs)

  def col(name, **kw):
    def build():
      return _jax_column(lambda p, x: jaxrnn.unroll(cell, p, None, x, **kw)[1], params, x, train)
    return Column(name, build)

  return [col("jaxrnn default (associative scan)"), col("step scan", mode="step"),
          col("kernel=pallas", kernel="pallas")]


def linear_reference(cell_name, xs, dtype, train):
  H = xs.shape[-1]
  cell = LINEAR_CELLS[cell_name](H, jnp.float32)
  params = jax.tree.map(lambda a: a.astype(DTYPES[dtype]).astype(jnp.float32),
                        cell.init(jax.random.key(0), xs.shape[-1]))
  forward = lambda p, x: jaxrnn.unroll(cell, p, None, x, mode="step")[1]
  return _jax_column(forward, params, jnp.asarray(np.asarray(xs, np.float32)), train)()


def recurrence_columns(a, b, train, blocks):
  """``h_t = a_t h_{t-1} + b_t`` alone, ``a, b: [T, D]`` (compared: the states, or the gradient of ``b``)."""
  h0 = jnp.zeros(a.shape[1:], a.dtype)

  def lax_scan(a, b):
    return jax.lax.scan(lambda h, ab: ((ab[0] * h + ab[1]),) * 2, h0, (a, b))[1]

  def assoc(a, b):
    return jaxrnn.parallel_scan.linear_recurrence(a, b, h0)[0]

  col = lambda name, f: Column(name, lambda: _jax_column(f, a, b, train))
  cols = [col("associative scan", assoc), col("lax.scan", lax_scan)]
  for block in blocks:
    cols.append(col(f"pallas block {block}",
                    lambda a, b, block=block: pallas_linear_recurrence.linear_recurrence(a, b, h0, block=block)))
  return cols


# ---------------------------------------------------------------------------------------------------- runner
class Clock:
  """The run's time budget, shared out over the rows still to run."""

  def __init__(self, budget_s: float, rows: int):
    self.end = time.perf_counter() + budget_s
    self.rows_left = rows

  def row_deadline(self) -> float:
    now = time.perf_counter()
    share = max(0.0, self.end - now) / max(1, self.rows_left)
    self.rows_left -= 1
    return now + share

  def left(self) -> float:
    return self.end - time.perf_counter()


def measure_row(columns: List[Column], reference: np.ndarray, tol: float, deadline: float, max_repeats: int,
                target_s: float) -> Dict[str, Dict[str, Any]]:
  """Builds (compiles) each column, checks it against ``reference``, then times the agreeing ones interleaved."""
  results: Dict[str, Dict[str, Any]] = {}
  runs: Dict[str, Callable] = {}
  for c in columns:
    if time.perf_counter() > deadline:
      results[c.name] = {"status": "skipped: time"}
      continue
    try:
      run = c.build()
      first = time.perf_counter()
      out = run()
      first = time.perf_counter() - first
      out = run.to_host(out)  # every column's run says how its result reaches the host (untimed)
    except NotApplicable as e:
      results[c.name] = {"status": str(e)}
      continue
    except Exception as e:  # a column that fails is reported (its traceback in the JSON), the run goes on
      results[c.name] = {"status": f"error: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}",
                         "traceback": traceback.format_exc()[-4000:]}
      continue
    err = _rel_err(out, reference)
    entry = {"compile_s": round(run.compile_s, 3), "rel_err": err}
    if not err <= tol:
      entry["status"] = f"MISMATCH (rel err {err:.2e} > {tol})"
    else:
      entry["status"] = "ok"
      entry["first_s"] = first
      runs[c.name] = run
    results[c.name] = entry
  if not runs:
    return results
  slowest = max(results[n]["first_s"] for n in runs)
  repeats = int(max(1, min(max_repeats, target_s / max(slowest * len(runs), 1e-6))))
  left = deadline - time.perf_counter()
  repeats = int(max(1, min(repeats, left / max(slowest * len(runs), 1e-6))))
  times: Dict[str, List[float]] = {n: [] for n in runs}
  for run in runs.values():  # warm-up (after compile and check)
    run()
  for _ in range(repeats):
    for n, run in runs.items():
      start = time.perf_counter()
      run()
      times[n].append(time.perf_counter() - start)
  for n, t in times.items():
    results[n].update(median_ms=1e3 * statistics.median(t), min_ms=1e3 * min(t), repeats=len(t))
    del results[n]["first_s"]
  return results


def run_gpu_tests(out_dir: str, timeout_s: float) -> str:
  """Runs the GPU tests (cuDNN route, Pallas kernel compiled); their log goes to ``checks.log``."""
  cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *GPU_TESTS]
  try:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    log, code = proc.stdout + proc.stderr, proc.returncode
  except subprocess.TimeoutExpired as e:
    log, code = f"{e.stdout or ''}{e.stderr or ''}\nTIMEOUT after {timeout_s:.0f} s", "timeout"
  with open(os.path.join(out_dir, "checks.log"), "w") as f:
    f.write(" ".join(cmd) + "\n\n" + log)
  last = [line for line in log.strip().splitlines() if line.strip()][-1:] or [""]
  return f"`{' '.join(cmd[1:])}`: exit {code}: {last[0]}"


def environment() -> Dict[str, Any]:
  env = {"jax": jax.__version__, "backend": jax.default_backend(), "device": str(jax.devices()[0].device_kind),
         "python": platform.python_version(), "cpus": os.cpu_count(),
         "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
         "command": " ".join([os.path.basename(sys.executable)] + sys.argv)}
  try:
    import torch
    env["torch"] = torch.__version__ + (f" ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "")
  except ImportError:
    env["torch"] = None
  return env


def _cell(entry: Dict[str, Any]) -> str:
  if "median_ms" in entry:
    return f"{entry['median_ms']:.3g}"
  return entry["status"]


def ratios(table: Dict[str, Any]) -> List[str]:
  """The issue's questions for the LSTM/GRU table: is jaxrnn's default at least as fast as Flax, and how far from
  cuDNN is it (and the best jaxrnn column)?"""
  ms = lambda cols, n: cols.get(n, {}).get("median_ms")
  lines = ["Ratios (median over median; < 1 means jaxrnn is faster):", "",
           "| row | default / flax | default / torch cuDNN | best jaxrnn / torch cuDNN (which) |", "|---|---|---|---|"]
  for row in table["rows"]:
    cols = row["columns"]
    default, flax, torch = ms(cols, "jaxrnn default (fused)"), ms(cols, "flax nn.RNN"), ms(cols, "torch cuDNN")
    ours = {n: ms(cols, n) for n in cols if n not in ("flax nn.RNN", "torch cuDNN", "jax.experimental.rnn")
            and ms(cols, n) is not None}
    best = min(ours, key=ours.get) if ours else None
    fmt = lambda a, b: f"{a / b:.2f}" if a is not None and b is not None else "-"
    lines.append(f"| {row['name']} | {fmt(default, flax)} | {fmt(default, torch)} | "
                 f"{fmt(ours.get(best), torch)} ({best or '-'}) |")
  return lines + [""]


def markdown(report: Dict[str, Any]) -> str:
  env = report["environment"]
  lines = [f"# jaxrnn on {env['device']} ({env['backend']})", "",
           f"jax {env['jax']}, torch {env['torch']}, {env['date']}; command: `{env['command']}`", ""]
  if report.get("tests"):
    lines += [f"GPU tests: {report['tests']}", ""]
  if report.get("skipped_rows"):
    lines += [f"**Over time**: {len(report['skipped_rows'])} row(s) not run: {', '.join(report['skipped_rows'])}",
              ""]
  for table in report["tables"]:
    names = []
    for row in table["rows"]:
      names += [n for n in row["columns"] if n not in names]
    lines += [f"## {table['title']}", "", table["note"], "",
              "| row | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for row in table["rows"]:
      lines.append(f"| {row['name']} | " + " | ".join(_cell(row["columns"][n]) if n in row["columns"] else ""
                                                      for n in names) + " |")
    lines += ["", "Compile seconds (first call for torch):", "",
              "| row | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for row in table["rows"]:
      lines.append(f"| {row['name']} | " + " | ".join(
          f"{row['columns'][n]['compile_s']:.2f}" if "compile_s" in row["columns"].get(n, {}) else ""
          for n in names) + " |")
    lines.append("")
    if table["kind"] == "rnn":
      lines += ratios(table)
  return "\n".join(lines)


def plan(args) -> List[Dict[str, Any]]:
  """The rows, most important first (so that a run over time loses the least)."""
  rows = []
  workloads = args.workload or (["W1", "W2"] if args.smoke else ["W1", "W4", "LONG", "W2", "W3"])
  for dtype in args.dtype or ["float32", "bfloat16"]:
    for wl in workloads:
      for cell in args.cell or ["lstm", "gru"]:
        rows.append(dict(table="rnn", cell=cell, workload=wl, dtype=dtype))
  if not args.no_linear:
    for dtype in args.dtype or ["float32"]:
      for wl in ("LONG", "W1") if not args.smoke else ("W2",):
        for cell in LINEAR_CELLS:
          rows.append(dict(table="linear", cell=cell, workload=wl, dtype=dtype))
      rows.append(dict(table="recurrence", cell="a*h+b", workload="LONG" if not args.smoke else "W1", dtype=dtype))
  if args.smoke:  # one row of each table; bfloat16 and float32, training and inference
    keep = [("rnn", "lstm", "W2", "bfloat16"), ("linear", "min_gru", "W2", "float32"),
            ("recurrence", "a*h+b", "W1", "float32")]
    rows = [r for r in rows if (r["table"], r["cell"], r["workload"], r["dtype"]) in keep]
  return rows


def run_row(row, args) -> Dict[str, Any]:
  B, T, F, H, train = WORKLOADS[row["workload"]]
  if args.smoke:
    B, T, F, H = SMOKE_SIZE
  rng = np.random.default_rng(1)
  dt = DTYPES[row["dtype"]]
  xs = rng.standard_normal((B, T, F)).astype(np.float32).astype(dt)
  size = f"B={B} T={T} F={F} H={H}"
  if row["table"] == "rnn":
    w = {k: v.astype(dt) for k, v in rnn_layers.make_weights(row["cell"], F, H).items()}
    reference = rnn_reference(row["cell"], w, xs, train)
    columns = rnn_columns(row["cell"], w, xs, row["dtype"], train)
  elif row["table"] == "linear":
    xs = rng.standard_normal((B, T, H)).astype(np.float32).astype(dt)
    size = f"B={B} T={T} F=H={H}"
    reference = linear_reference(row["cell"], xs, row["dtype"], train)
    columns = linear_columns(row["cell"], xs, row["dtype"], train)
  else:
    D = B * H
    size = f"T={T} D={D}"
    a = jnp.asarray(rng.uniform(0.5, 1.0, (T, D)).astype(np.float32).astype(dt))
    b = jnp.asarray(rng.standard_normal((T, D)).astype(np.float32).astype(dt))
    reference = recurrence_columns(a.astype(jnp.float32), b.astype(jnp.float32), train, ())[1].build()()
    columns = recurrence_columns(a, b, train, (32, 64, 128, 256) if not args.smoke else (32,))
  name = f"{row['cell']} {row['workload']} {'train' if train else 'infer'} {row['dtype']} ({size})"
  return name, reference, columns


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", required=True, help="folder for gpu.md, gpu.json (and checks.log)")
  parser.add_argument("--smoke", action="store_true",
                      help="tiny sizes, one row of each table, all columns (CPU, seconds; the LSTM in bfloat16, "
                           "inference but for the recurrence row)")
  parser.add_argument("--budget", type=float, default=420.0, help="seconds for the whole run (tests included)")
  parser.add_argument("--cell", choices=["lstm", "gru"], action="append")
  parser.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
  parser.add_argument("--dtype", choices=sorted(DTYPES), action="append")
  parser.add_argument("--no-linear", action="store_true", help="only the LSTM/GRU table")
  parser.add_argument("--no-tests", action="store_true", help="skip the GPU tests before timing")
  parser.add_argument("--tests-timeout", type=float, default=150.0)
  parser.add_argument("--repeats", type=int, default=20, help="at most this many timed calls per column")
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  start = time.perf_counter()
  if args.smoke:
    jax.config.update("jax_disable_most_optimizations", True)  # tiny programs: compile time is all there is
  report: Dict[str, Any] = {"environment": environment(), "smoke": args.smoke, "budget_s": args.budget}
  if not args.smoke and not args.no_tests and _on_gpu():
    report["tests"] = run_gpu_tests(args.out, min(args.tests_timeout, args.budget / 3))
    print("GPU tests:", report["tests"], flush=True)
  rows = plan(args)
  clock = Clock(args.budget - (time.perf_counter() - start), len(rows))
  titles = {
      "rnn": ("LSTM and GRU: median ms per call",
              "Training rows: forward + backward; others: forward. jaxrnn default = unroll() in mode='auto' (the "
              "fused path, input projection hoisted and 8 steps per loop iteration on GPU)."),
      "linear": ("Linear recurrences: median ms per call", "min_gru (log_space=False), rg_lru, lru through "
                 "jaxrnn.unroll; default = the associative scan."),
      "recurrence": ("h_t = a_t h_{t-1} + b_t alone: median ms per call",
                     "a, b: [T, D] with D = B*H; training: forward + backward (the Pallas gradient runs the "
                     "same kernel backwards, same block)."),
  }
  tables: Dict[str, Dict[str, Any]] = {}
  report["skipped_rows"] = []
  for row in rows:
    if clock.left() < 5:
      clock.rows_left -= 1
      report["skipped_rows"].append(f"{row['cell']} {row['workload']} {row['dtype']}")
      continue
    deadline = clock.row_deadline()
    try:
      name, reference, columns = run_row(row, args)
      results = measure_row(columns, reference, TOLERANCE[row["dtype"]], deadline, args.repeats,
                            target_s=0.05 if args.smoke else 2.0)
    except Exception as e:  # the reference itself failed: say so, go on
      name, results = f"{row['cell']} {row['workload']} {row['dtype']}", {
          "reference": {"status": f"error: {type(e).__name__}: {str(e).splitlines()[0][:200]}"}}
    table = tables.setdefault(row["table"], {"kind": row["table"], "title": titles[row["table"]][0],
                                             "note": titles[row["table"]][1], "rows": []})
    table["rows"].append({"name": name, **row, "columns": results})
    print(f"[{time.perf_counter() - start:6.1f} s] {name}: " + ", ".join(
        f"{n} {_cell(r)}" for n, r in results.items()), flush=True)
  report["tables"] = list(tables.values())
  report["wall_s"] = time.perf_counter() - start
  with open(os.path.join(args.out, "gpu.json"), "w") as f:
    json.dump(report, f, indent=1, default=str)
  md = markdown(report)
  with open(os.path.join(args.out, "gpu.md"), "w") as f:
    f.write(md + "\n")
  print("\n" + md)
  print(f"\nwall {report['wall_s']:.0f} s; wrote {args.out}/gpu.md and gpu.json")
  return 0


if __name__ == "__main__":
  sys.exit(main())
