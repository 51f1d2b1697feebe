"""Single-layer LSTM/GRU: jaxrnn against Flax, Equinox, Haiku and PyTorch, side by side in one process.

Run by hand (not part of the tests); peers are benchmark-only dependencies (flax is a runtime dependency; equinox,
dm-haiku and torch==2.13.0 are installed separately):

    .venv/bin/python benchmarks/rnn_layers.py                    # all workloads, LSTM and GRU
    .venv/bin/python benchmarks/rnn_layers.py --cell lstm --workload W1 --repeats 7
    .venv/bin/python benchmarks/rnn_layers.py --mixed          # also jaxrnn with bfloat16 matrix products

On a shared, loaded machine wall-clock times of multi-threaded runs say little (thread pools spin and wait on
each other). One thread each, timed by the process's CPU clock, compares the work each implementation does:

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" taskset -c 1 \
      .venv/bin/python benchmarks/rnn_layers.py --cell lstm --workload W1 --threads 1 --clock cpu

Every implementation gets the same weights and inputs; outputs (and, for training workloads, input gradients) are
checked to agree before timing. Implementations are timed interleaved, one call each per round, so machine noise
hits them alike, in a fresh (seeded) order each round: in a fixed order each one always followed the same one, and
a native loop that followed an XLA program ran slower (LSTM W1 training, native=True after the pure-JAX path: 58.2 ms
against 46.9 for the default after it; shuffled, 51.6 against 48.1; GRU 52.3 / 37.8 -> 40.4 / 40.7). A call right
after torch's runs slower too, while PyTorch's OpenMP threads spin on (jax.grad of jaxrnn's LSTM at W1 alternating
with torch's, medians of 30 pairs, three runs: 44.4-45.5 ms back to back, 40.8-41.6 with 20 ms of sleep before each
call; torch's own 41.0-41.9 either way). The calls still follow each other without a pause: after 20 ms idle the
native loop's B=1 calls (W3) took 0.7-1.2 ms more (its second thread waking), the pure-JAX path's 0.2-0.4. The table
reports median/min/max milliseconds and the ratio of each median to PyTorch's and to the GEMM floor (one matrix
product with the same FLOPs as the layer, plus its elementwise work).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from typing import Callable, Dict

os.environ.setdefault("XLA_FLAGS", "")

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # `python benchmarks/...` too
from benchmarks._timing import interleaved_times  # noqa: E402

WORKLOADS = {
    # name: (batch, time, input, hidden, train)
    "W1": (32, 128, 128, 256, True),
    "W2": (64, 512, 128, 128, False),
    "W3": (1, 1024, 64, 128, False),
    "W4": (128, 256, 512, 512, True),
}
GATES = {"lstm": 4, "gru": 3}
TORCH_THREADS = 2
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
CLOCK = time.perf_counter


def _block(tree):
  return jax.tree.map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, tree)


def make_weights(cell_name: str, F: int, H: int, seed: int = 0) -> Dict[str, np.ndarray]:
  """PyTorch-layout weights: w_ih [G*H, F], w_hh [G*H, H], b_ih [G*H], b_hh [G*H] (gate orders as PyTorch)."""
  rng = np.random.default_rng(seed)
  G = GATES[cell_name]
  s = 1.0 / np.sqrt(H)
  u = lambda *shape: rng.uniform(-s, s, shape).astype(np.float32)
  return {"w_ih": u(G * H, F), "w_hh": u(G * H, H), "b_ih": u(G * H), "b_hh": u(G * H)}


# ---------------------------------------------------------------------------------------------------- jaxrnn
def jaxrnn_params(cell_name, w):
  """``LSTMParams``/``GRUParams`` holding the PyTorch-layout weights ``w`` (in their dtype)."""
  H = w["w_hh"].shape[1]
  if cell_name == "lstm":
    return jaxrnn.LSTMParams(w_i=jnp.asarray(w["w_ih"].T), w_h=jnp.asarray(w["w_hh"].T),
                             b=jnp.asarray(w["b_ih"] + w["b_hh"]))
  b = w["b_ih"] + np.concatenate([w["b_hh"][:2 * H], np.zeros(H, w["b_hh"].dtype)])
  return jaxrnn.GRUParams(w_i=jnp.asarray(w["w_ih"].T), w_h=jnp.asarray(w["w_hh"].T), b=jnp.asarray(b),
                          b_hn=jnp.asarray(w["b_hh"][2 * H:]))


def jaxrnn_impl(cell_name, w, train, dtype=None, native=None):
  """``dtype=jnp.bfloat16``: mixed precision (bfloat16 matrix products, float32 params, carry and gate math).
  ``native``: ``RunOptions(native=...)``: ``True`` the native CPU loop, ``False`` the pure-JAX path."""
  H = w["w_hh"].shape[1]
  cell = (jaxrnn.lstm if cell_name == "lstm" else jaxrnn.gru)(H, dtype=dtype)
  params = jaxrnn_params(cell_name, w)

  def forward(params, xs):
    carry = cell.initial_carry(params, xs.shape[:1])
    return jaxrnn.unroll(cell, params, carry, xs, options=jaxrnn.RunOptions(native=native))[1]

  return _jax_runner(forward, params, train)


def _jax_runner(forward, params, train):
  if train:
    def loss(params, xs):
      return jnp.sum(forward(params, xs) ** 2)
    fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))

    def run(xs):
      (value, (g_params, g_xs)) = fn(params, xs)
      return g_xs
  else:
    fn = jax.jit(forward)

    def run(xs):
      return fn(params, xs)
  return run


# ---------------------------------------------------------------------------------------------------- flax
def flax_impl(cell_name, w, train, optimized):
  import flax.linen as nn
  H = w["w_hh"].shape[1]
  F = w["w_ih"].shape[1]
  if cell_name == "lstm":
    cell = nn.OptimizedLSTMCell(H) if optimized else nn.LSTMCell(H)
  else:
    cell = nn.GRUCell(H)
  model = nn.RNN(cell)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 2, F)))
  variables = _flax_params(cell_name, variables, w)

  def forward(variables, xs):
    return model.apply(variables, xs)

  return _jax_runner(forward, variables, train)


def _flax_params(cell_name, variables, w):
  del variables  # replaced whole, with the same structure
  split = lambda a: np.split(a, GATES[cell_name], axis=0)
  if cell_name == "lstm":
    wi, wh = split(w["w_ih"]), split(w["w_hh"])
    b = split(w["b_ih"] + w["b_hh"])
    p = {}  # LSTMCell and OptimizedLSTMCell share this layout (OptimizedLSTMCell fuses it at run time).
    for k, n in enumerate(["i", "f", "g", "o"]):
      p["i" + n] = {"kernel": wi[k].T}
      p["h" + n] = {"kernel": wh[k].T, "bias": b[k]}
  else:
    wi, wh = split(w["w_ih"]), split(w["w_hh"])
    bi, bh = split(w["b_ih"]), split(w["b_hh"])
    p = {"ir": {"kernel": wi[0].T, "bias": bi[0] + bh[0]}, "hr": {"kernel": wh[0].T},
         "iz": {"kernel": wi[1].T, "bias": bi[1] + bh[1]}, "hz": {"kernel": wh[1].T},
         "in": {"kernel": wi[2].T, "bias": bi[2]}, "hn": {"kernel": wh[2].T, "bias": bh[2]}}
  return {"params": {"cell": jax.tree.map(jnp.asarray, p)}}


# ---------------------------------------------------------------------------------------------------- equinox
def equinox_impl(cell_name, w, train):
  import equinox as eqx
  H, F = w["w_hh"].shape[1], w["w_ih"].shape[1]
  if cell_name == "lstm":
    cell = eqx.nn.LSTMCell(F, H, key=jax.random.key(0))
    cell = eqx.tree_at(lambda c: (c.weight_ih, c.weight_hh, c.bias), cell,
                       (jnp.asarray(w["w_ih"]), jnp.asarray(w["w_hh"]), jnp.asarray(w["b_ih"] + w["b_hh"])))
  else:
    cell = eqx.nn.GRUCell(F, H, key=jax.random.key(0))
    b = w["b_ih"] + np.concatenate([w["b_hh"][:2 * H], np.zeros(H, np.float32)])
    cell = eqx.tree_at(lambda c: (c.weight_ih, c.weight_hh, c.bias, c.bias_n), cell,
                       (jnp.asarray(w["w_ih"]), jnp.asarray(w["w_hh"]), jnp.asarray(b),
                        jnp.asarray(w["b_hh"][2 * H:])))

  def forward(cell, xs):
    def one(x_seq):
      h0 = jnp.zeros(H, xs.dtype)
      init = (h0, h0) if cell_name == "lstm" else h0

      def body(c, x):
        c = cell(x, c)
        return c, (c[0] if cell_name == "lstm" else c)
      return jax.lax.scan(body, init, x_seq)[1]
    return jax.vmap(one)(xs)

  return _jax_runner(forward, cell, train)


# ---------------------------------------------------------------------------------------------------- haiku
def haiku_impl(cell_name, w, train):
  import haiku as hk
  H, F = w["w_hh"].shape[1], w["w_ih"].shape[1]
  if cell_name != "lstm":
    return None  # hk.GRU uses another gate layout; compared for LSTM only.

  def fwd(xs):
    core = hk.LSTM(H)
    out, _ = hk.dynamic_unroll(core, jnp.swapaxes(xs, 0, 1), core.initial_state(xs.shape[0]))
    return jnp.swapaxes(out, 0, 1)

  model = hk.without_apply_rng(hk.transform(fwd))
  params = model.init(jax.random.key(0), jnp.zeros((1, 2, F)))
  # hk.LSTM: one linear on [x, h] -> 4H with gates (i, g, f, o); forget bias +1 added inside the step.
  order = [0, 2, 1, 3]
  wi, wh = np.split(w["w_ih"], 4, 0), np.split(w["w_hh"], 4, 0)
  b = np.split(w["b_ih"] + w["b_hh"], 4)
  b[1] = b[1] - 1.0
  kernel = np.concatenate([np.concatenate([wi[k].T, wh[k].T], 0) for k in order], 1)
  bias = np.concatenate([b[k] for k in order])
  name = list(params)[0]
  params = {name: {"w": jnp.asarray(kernel), "b": jnp.asarray(bias)}}
  return _jax_runner(lambda p, xs: model.apply(p, xs), params, train)


# ---------------------------------------------------------------------------------------------------- torch
def torch_impl(cell_name, w, train):
  import torch
  torch.set_num_threads(TORCH_THREADS)
  H, F = w["w_hh"].shape[1], w["w_ih"].shape[1]
  m = (torch.nn.LSTM if cell_name == "lstm" else torch.nn.GRU)(F, H, batch_first=True)
  with torch.no_grad():
    for k in ("w_ih", "w_hh", "b_ih", "b_hh"):
      getattr(m, {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0", "b_ih": "bias_ih_l0",
                  "b_hh": "bias_hh_l0"}[k]).copy_(torch.from_numpy(w[k]))

  def run(xs):
    x = torch.from_numpy(np.asarray(xs))
    if train:
      x.requires_grad_(True)
      out, _ = m(x)
      (out ** 2).sum().backward()
      m.zero_grad(set_to_none=True)
      return x.grad.numpy()
    with torch.no_grad():
      return m(x)[0].numpy()
  return run


# ---------------------------------------------------------------------------------------------------- floor
def floor_impl(cell_name, B, T, F, H, train):
  """One GEMM with the layer's FLOPs ([B*T, F+H] @ [F+H, G*H]) plus the gate elementwise work."""
  G = GATES[cell_name]
  a = jnp.ones((B * T, F + H), jnp.float32) * 0.01
  wmat = jnp.ones((F + H, G * H), jnp.float32) * 0.01

  def fwd(wmat, a):
    z = a @ wmat
    return jnp.tanh(z[:, :H]) * jax.nn.sigmoid(z[:, H:2 * H])

  if train:
    fn = jax.jit(jax.grad(lambda wm, a: jnp.sum(fwd(wm, a) ** 2), argnums=(0, 1)))
  else:
    fn = jax.jit(fwd)
  return lambda xs: fn(wmat, a)


def bench(cell_name, workload, repeats, mixed=False):
  B, T, F, H, train = WORKLOADS[workload]
  w = make_weights(cell_name, F, H)
  xs = np.random.default_rng(1).standard_normal((B, T, F)).astype(np.float32)
  impls: Dict[str, Callable] = {"jaxrnn": jaxrnn_impl(cell_name, w, train, native=False)}
  if jaxrnn.native.available() and jax.default_backend() == "cpu":
    impls["jaxrnn native"] = jaxrnn_impl(cell_name, w, train, native=True)
    impls["jaxrnn default"] = jaxrnn_impl(cell_name, w, train, native=None)
  if mixed:
    impls["jaxrnn bf16 compute"] = jaxrnn_impl(cell_name, w, train, dtype=jnp.bfloat16, native=False)
  if cell_name == "lstm":
    impls["flax OptimizedLSTMCell"] = flax_impl(cell_name, w, train, True)
    impls["flax LSTMCell"] = flax_impl(cell_name, w, train, False)
  else:
    impls["flax GRUCell"] = flax_impl(cell_name, w, train, False)
  for name, maker in (("equinox", equinox_impl), ("haiku", haiku_impl), ("torch", torch_impl)):
    try:
      impl = maker(cell_name, w, train)
    except ImportError as e:
      print(f"  (skipping {name}: {e})")
      continue
    if impl is not None:
      impls[name] = impl
  reference = np.asarray(impls["jaxrnn"](jnp.asarray(xs)))
  for name, fn in impls.items():
    out = np.asarray(_block(fn(xs if name == "torch" else jnp.asarray(xs))))
    err = float(np.abs(out - reference).max() / max(1.0, np.abs(reference).max()))
    assert err < (5e-2 if "bf16" in name else 1e-4), f"{name} disagrees with jaxrnn: {err}"
  impls["GEMM floor"] = floor_impl(cell_name, B, T, F, H, train)
  xs_j = jnp.asarray(xs)
  calls = {name: functools.partial(fn, xs if name == "torch" else xs_j) for name, fn in impls.items()}
  times = interleaved_times(calls, repeats, CLOCK)  # a fresh order each round: see the module docstring
  med = {n: statistics.median(t) for n, t in times.items()}
  jax_peers = [n for n in impls if n not in ("torch", "GEMM floor") and not n.startswith("jaxrnn")]
  best_jax = min(jax_peers, key=med.get) if jax_peers else None
  title = f"{cell_name.upper()} {workload} {'train fwd+bwd' if train else 'infer'} B={B} T={T} I={F} H={H}"
  print(f"\n{title}\n")
  print("| implementation | median ms | min ms | max ms | / torch | / floor | / jaxrnn |")
  print("|---|---|---|---|---|---|---|")
  for n in impls:
    t = times[n]
    vs_torch = f"{med[n] / med['torch']:.2f}" if "torch" in med else "-"
    print(f"| {n} | {1e3 * med[n]:.2f} | {1e3 * min(t):.2f} | {1e3 * max(t):.2f} | {vs_torch} | "
          f"{med[n] / med['GEMM floor']:.2f} | {med[n] / med['jaxrnn']:.2f} |")
  if best_jax:
    ours = [n for n in impls if n.startswith("jaxrnn")]
    print(f"\nfastest JAX peer: {best_jax}; speed-up over it: "
          + ", ".join(f"{n} {med[best_jax] / med[n]:.2f}x" for n in ours))


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--cell", choices=sorted(GATES), action="append")
  parser.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--threads", type=int, default=2, help="PyTorch's intra-op threads (JAX: see XLA_FLAGS)")
  parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                      help="wall: elapsed time; cpu: this process's CPU time (use with one thread)")
  parser.add_argument("--mixed", action="store_true",
                      help="also time jaxrnn with bfloat16 matrix products (float32 params and carry)")
  args = parser.parse_args()
  global TORCH_THREADS, CLOCK
  TORCH_THREADS, CLOCK = args.threads, CLOCKS[args.clock]
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs, clock={args.clock}, "
        f"torch threads={args.threads}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
  print(f"{jaxrnn.native.status_line()}; 'jaxrnn' rows: the pure-JAX path (RunOptions(native=False)), "
        f"'jaxrnn native': the all-native custom_vjp (native=True), 'jaxrnn default': native=None (the native "
        f"loops, forward and backward, with forward-mode AD, where jaxrnn.cells._native_scan.AUTO says, else the "
        f"pure-JAX path)")
  for cell_name in args.cell or ["lstm", "gru"]:
    for workload in args.workload or list(WORKLOADS):
      bench(cell_name, workload, args.repeats, args.mixed)


if __name__ == "__main__":
  main()
