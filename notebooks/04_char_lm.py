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
# # A character-level language model, and what its cells respond to
#
# Karpathy's [The Unreasonable Effectiveness of Recurrent Neural Networks](https://karpathy.github.io/2015/05/21/rnn-effectiveness/)
# trained an LSTM to predict the next character of the Linux source and found single cells that track
# quotes, line length or indentation. We do the same, briefly, on `jaxrnn train`'s default task: the `.py`
# files of the running Python's standard library (nothing is downloaded). The model maps each character to an
# embedding $e_t$, runs the LSTM, and reads out logits for the next character:
#
# $$ (c_t, h_t) = \mathrm{LSTM}(e_t, (c_{t-1}, h_{t-1})), \qquad
# p(x_{t+1} \mid x_{\le t}) = \mathrm{softmax}(h_t W + b), $$
#
# trained by cross-entropy (nats per character; $\div \ln 2$ for bits). Everything below is the library code
# behind the `jaxrnn` command: `jaxrnn.train.config.from_dict` → `jaxrnn.train.build` (task, model, optimizer,
# one jitted train step) → `jaxrnn.train.sample_text`.

# %% tags=["parameters"]
import os

# Sizes. The test suite runs every notebook with JAXRNN_NOTEBOOK_SMALL=1 (tiny sizes, seconds);
# the defaults run in under 2 minutes on a 2-core CPU. Figures are saved under OUT_DIR.
SMALL = os.environ.get("JAXRNN_NOTEBOOK_SMALL") == "1"
OUT_DIR = os.environ.get("JAXRNN_NOTEBOOK_OUT", "figures")
os.makedirs(OUT_DIR, exist_ok=True)

HIDDEN = 16 if SMALL else 128
SEQ_LEN = 16 if SMALL else 64          # BPTT window
BATCH = 8 if SMALL else 32
STEPS = 5 if SMALL else 600
CORPUS_CHARS = 20_000 if SMALL else 300_000
TEMPERATURES = [0.8] if SMALL else [0.5, 1.0]
SAMPLE_LEN = 40 if SMALL else 300
SHOW_CHARS = 120 if SMALL else 600     # characters in the activation pictures

# %%
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import jaxrnn
import jaxrnn.train
from jaxrnn.train import config

# %%
cfg = config.from_dict({
    "task": {"name": "charlm", "seq_len": SEQ_LEN, "corpus_chars": CORPUS_CHARS},
    "model": {"cell": "lstm", "hidden_size": HIDDEN, "embed_size": 32},
    "optimizer": {"lr": 5e-3, "schedule": "cosine"},
    "train": {"batch_size": BATCH, "steps": STEPS, "eval_batches": 4},
})
run = jaxrnn.train.build(cfg)              # task, model, optimizer, jitted train_step and evaluate
print(f"corpus: {run.task.data['train'].shape[0]} training characters, unigram entropy "
      f"{run.task.baseline:.3f} nats/char")

state = run.init_state()
losses, start = [], time.perf_counter()
for _ in range(STEPS):
  state, loss = run.train_step(state, run.task.data["train"])
  losses.append(loss)
losses = np.asarray(losses)
held_out = float(run.evaluate(state.params, run.task.data["val"]))
print(f"{STEPS} steps in {time.perf_counter() - start:.1f}s; train {losses[-20:].mean():.3f}, "
      f"held-out {held_out:.3f} nats/char = {held_out / np.log(2):.3f} bits/char")

fig, ax = plt.subplots(figsize=(6, 3.2))
ax.plot(losses, lw=1, label="train")
ax.axhline(held_out, color="C1", label="held-out (end)")
ax.axhline(run.task.baseline, color="gray", ls="--", label="unigram baseline")
ax.set(xlabel="step", ylabel="nats / char", title="char-LM on the Python standard library")
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(OUT_DIR, "charlm_loss.png"))

# %% [markdown]
# ## Sampling with temperature
#
# The model samples $x_{t+1} \sim \mathrm{softmax}(\text{logits} / \tau)$ and feeds it back. $\tau < 1$
# sharpens the distribution (safer, more repetitive text), $\tau > 1$ flattens it (more variety, more errors).

# %%
for tau in TEMPERATURES:
  text = jaxrnn.train.sample_text(run, state.params, prompt="def ", length=SAMPLE_LEN, seed=0, temperature=tau)
  print(f"--- temperature {tau} ---\n{text}\n")

# %% [markdown]
# ## What individual cells respond to
#
# We run the trained LSTM over held-out text with `jaxrnn.unroll(..., return_all_carries=True)` and colour each
# character by one unit's $\tanh(c_t)$ after reading it (Karpathy's pictures: red positive, blue negative).
# Instead of browsing all units by eye, we pick, for a few simple properties of the text, the unit whose
# activation correlates most with it. With a small, briefly trained model the correspondence is rough; train
# longer (`STEPS`, `HIDDEN`) for sharper cells.

# %%
from jaxrnn.train.tasks import charlm

ids = np.asarray(run.task.data["val"][:SHOW_CHARS])
text = charlm.decode(ids)
cell = run.model.cell

@jax.jit
def cell_states(params, ids):
  xs = params.embed[ids]                    # [N, E]
  p = params.layers[0]                      # the first layer of the jaxrnn.stack
  _, _, carries = jaxrnn.unroll(cell, p, cell.initial_carry(p), xs, return_all_carries=True)
  return jnp.tanh(carries.c)                # [N, H]

act = np.asarray(cell_states(state.params, jnp.asarray(ids)))

# Simple properties of each position (after reading the character).
col, depth, in_str, quote = [], [], [], None
c_col, c_depth = 0, 0
for ch in text:
  c_col = 0 if ch == "\n" else c_col + 1
  if quote is None and ch in "'\"":
    quote = ch
  elif quote is not None and ch == quote:
    quote = None
  if quote is None:
    c_depth = max(0, c_depth + (ch in "([{") - (ch in ")]}"))
  col.append(c_col); depth.append(c_depth); in_str.append(quote is not None)
features = {"position in line": np.array(col, float), "bracket depth": np.array(depth, float),
            "inside a string": np.array(in_str, float), "is a space": np.array([ch == " " for ch in text], float)}

def corr(a, b):
  a, b = a - a.mean(), b - b.mean()
  return (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-12)

picks = []
for fname, fval in features.items():
  r = np.array([corr(act[:, u], fval) for u in range(act.shape[1])])
  r[[u for _, u, _ in picks]] = 0                # a different unit for each property
  u = int(np.nanargmax(np.abs(r)))
  picks.append((fname, u, r[u]))
  print(f"{fname:18s} best unit {u:3d}  correlation {r[u]:+.2f}")


# %%
def show_text(ax, text, values, width=80, title=""):
  """Draws text in a monospace grid, each character's background coloured by its value in [-1, 1]."""
  cells, r, c = [], 0, 0
  for ch, v in zip(text, values):
    if ch == "\n":
      cells.append((r, c, "\u21b5", v)); r, c = r + 1, 0
      continue
    if c >= width:
      r, c = r + 1, 0
    cells.append((r, c, ch, v)); c += 1
  grid = np.full((r + 1, width + 1), np.nan)
  for rr, cc, _, v in cells:
    grid[rr, cc] = v
  ax.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
  for rr, cc, ch, _ in cells:
    if ch != " ":
      ax.text(cc, rr, ch, ha="center", va="center", family="monospace", fontsize=7)
  ax.set(xticks=[], yticks=[], title=title)

n_lines = text.count("\n") + len(text) // 80 + 1
fig, axes = plt.subplots(len(picks), 1, figsize=(11, 0.22 * n_lines * len(picks) + 1.2))
for ax, (fname, u, r) in zip(np.atleast_1d(axes), picks):
  show_text(ax, text, act[:, u], title=f"unit {u}: tanh(c), correlation {r:+.2f} with '{fname}'")
fig.tight_layout()
fig.savefig(os.path.join(OUT_DIR, "charlm_cells.png"), dpi=110)
