# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Parallel scans: recurrences without a loop over time
#
# A recurrence whose gates read only the input, not $h_{t-1}$, is **linear** in the state:
#
# $$ h_t = a_t \odot h_{t-1} + b_t, \qquad a_t, b_t \text{ functions of } x_t . $$
#
# minGRU (Feng et al. 2024: $a_t = 1 - z_t$, $b_t = z_t \odot \tilde h_t$ with $z_t, \tilde h_t$ from $x_t$) and
# the LRU (Orvieto et al. 2023: a complex diagonal $\lambda$) are of this form. Composing two steps is again
# one step, $(a_1, b_1) \bullet (a_2, b_2) = (a_1 a_2,\; a_2 b_1 + b_2)$, and $\bullet$ is **associative**, so
# all $T$ states come out of one `jax.lax.associative_scan` of depth $O(\log T)$ (Blelloch 1990) instead of
# $T$ dependent steps. `jaxrnn.unroll(..., mode="sequence")` takes that path; `mode="step"` scans
# `cell.step` with `lax.scan`; both compute the same function. GRU and LSTM, whose gates read $h_{t-1}$, have
# only the sequential path.
#
# The parallel form does $O(T \log T)$ work (or $O(T)$ with more passes) against $O(T)$ for the loop, so it
# pays when the hardware has parallelism to spare — a GPU, or a CPU whose per-step loop overhead dominates.
# Below we time both paths as $T$ grows, forward only and forward + backward.

# %% tags=["parameters"]
import os

# Sizes. The test suite runs every notebook with JAXRNN_NOTEBOOK_SMALL=1 (tiny sizes, seconds);
# the defaults run in under 2 minutes on a 2-core CPU. Figures are saved under OUT_DIR.
SMALL = os.environ.get("JAXRNN_NOTEBOOK_SMALL") == "1"
OUT_DIR = os.environ.get("JAXRNN_NOTEBOOK_OUT", "figures")
os.makedirs(OUT_DIR, exist_ok=True)

TS = [16, 64] if SMALL else [64, 256, 1024, 4096]
BATCH = 2 if SMALL else 8
FEATURES = 4 if SMALL else 32
HIDDEN = 8 if SMALL else 64
REPEATS = 1 if SMALL else 3
KINDS = ["fwd"] if SMALL else ["fwd", "f+b"]

# %%
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import jaxrnn

# %%
CELLS = {"minGRU": jaxrnn.min_gru(HIDDEN), "LRU": jaxrnn.lru(HIDDEN)}

def median_ms(fn, *args):
  jax.block_until_ready(fn(*args))                 # compile and warm up
  times = []
  for _ in range(REPEATS):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return 1e3 * float(np.median(times))

timings = {}                                        # (cell, kind, mode) -> [ms per T]
for name, cell in CELLS.items():
  params = cell.init(jax.random.key(0), FEATURES)
  for T in TS:
    xs = jax.random.normal(jax.random.key(1), (BATCH, T, FEATURES))
    carry = cell.initial_carry(params, (BATCH,))
    outs = {}
    for mode in ("sequence", "step"):
      def forward(p, x, mode=mode):
        return jaxrnn.unroll(cell, p, carry, x, mode=mode)[1]

      def loss(p, x, mode=mode):
        return jnp.sum(forward(p, x) ** 2)

      fns = {"fwd": jax.jit(forward), "f+b": jax.jit(jax.grad(loss, argnums=(0, 1)))}
      outs[mode] = np.asarray(fns["fwd"](params, xs))
      for kind in KINDS:
        timings.setdefault((name, kind, mode), []).append(median_ms(fns[kind], params, xs))
    err = np.abs(outs["sequence"] - outs["step"]).max() / np.abs(outs["step"]).max()
    assert err < 1e-3, (name, T, err)              # the two paths compute the same function
    print(f"{name:6s} T = {T:5d}  " + "  ".join(
        f"{kind}: step {timings[name, kind, 'step'][-1]:8.2f} ms, sequence "
        f"{timings[name, kind, 'sequence'][-1]:8.2f} ms" for kind in KINDS))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for j, name in enumerate(CELLS):
  for kind, ls in zip(KINDS, ["-", ":"]):
    par, seq = np.array(timings[name, kind, "sequence"]), np.array(timings[name, kind, "step"])
    axes[0].plot(TS, par, ls, marker="o", color=f"C{j}", label=f"{name} {kind}, parallel")
    axes[0].plot(TS, seq, ls, marker="x", color=f"C{j}", alpha=0.5, label=f"{name} {kind}, sequential")
    axes[1].plot(TS, seq / par, ls, marker="o", color=f"C{j}", label=f"{name} {kind}")
axes[0].set(xscale="log", yscale="log", xlabel="T", ylabel="median ms", title="time per call")
axes[1].axhline(1, color="gray", lw=1)
axes[1].set(xscale="log", yscale="log", xlabel="T", ylabel="sequential / parallel",
            title="speed-up of the parallel path (> 1: faster)")
for ax in axes:
  ax.legend(fontsize=7)
fig.suptitle(f"{jax.devices()[0].platform}: batch {BATCH}, F = {FEATURES}, H = {HIDDEN}, float32", fontsize=9)
fig.tight_layout()
fig.savefig(os.path.join(OUT_DIR, "parallel_vs_sequential.png"))

# %% [markdown]
# What to expect. On a CPU the sequential loop pays a fixed overhead for each of its $T$ dependent steps, while
# the associative scan makes a few large vectorised passes (with $O(T \log T)$ work); for minGRU's real scan
# the parallel path usually wins forward from a few hundred steps on (docs/unroll.md reports 2.8× at $T = 4096$ on
# this project's 2-core CPU), less so for forward + backward (whose backward pass is itself one reversed scan).
# The LRU scans **complex** pairs, whose arithmetic is slow on CPU, so there its parallel path can lose. On a GPU
# both gain far more, since the loop leaves almost all of the device idle. Timings on a shared machine are noisy
# (the curves above may zig-zag): rerun with larger `REPEATS` before quoting numbers;
# `benchmarks/parallel_vs_sequential.py` has more cells and options.
