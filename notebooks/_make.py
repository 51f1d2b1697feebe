"""Writes the notebooks of this folder from the cell sources below (outputs empty): ``python notebooks/_make.py``.

Not collected by pytest (tests/test_notebooks.py executes the .ipynb files themselves).
"""

import pathlib
import textwrap

import nbformat

HERE = pathlib.Path(__file__).resolve().parent
NOTEBOOKS = {}


def notebook(name):
  def register(fn):
    NOTEBOOKS[name] = fn
    return fn
  return register


def md(src):
  return nbformat.v4.new_markdown_cell(textwrap.dedent(src).strip("\n"))


def code(src, tags=()):
  cell = nbformat.v4.new_code_cell(textwrap.dedent(src).strip("\n"))
  if tags:
    cell.metadata["tags"] = list(tags)
  return cell


def params_cell(body):
  return code(textwrap.dedent('''
  import os

  # Sizes. The test suite runs every notebook with JAXRNN_NOTEBOOK_SMALL=1 (tiny sizes, seconds);
  # the defaults run in under 2 minutes on a 2-core CPU. Figures are saved under OUT_DIR.
  SMALL = os.environ.get("JAXRNN_NOTEBOOK_SMALL") == "1"
  OUT_DIR = os.environ.get("JAXRNN_NOTEBOOK_OUT", "figures")
  os.makedirs(OUT_DIR, exist_ok=True)
  ''') + textwrap.dedent(body), tags=("parameters",))


IMPORTS = '''
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import jaxrnn
'''


@notebook("01_understanding_lstm")
def nb01():
  return [
      md(r"""
      # Understanding the LSTM, one gate at a time

      colah's [Understanding LSTM Networks](https://colah.github.io/posts/2015-08-Understanding-LSTMs/) draws the
      LSTM as a *conveyor belt*: the cell state $c_t$ runs along the sequence and is changed only by two
      element-wise operations, a multiplicative **forget** and an additive **write**. `jaxrnn.lstm` is exactly
      these equations (gate blocks fused into one matmul, in PyTorch's order `[i, f, g, o]`):

      $$
      \begin{aligned}
      f_t &= \sigma(x_t W_{if} + h_{t-1} W_{hf} + b_f) && \text{forget gate: what to keep of } c_{t-1}\\
      i_t &= \sigma(x_t W_{ii} + h_{t-1} W_{hi} + b_i) && \text{input gate: how much to write}\\
      \tilde c_t &= \tanh(x_t W_{ig} + h_{t-1} W_{hg} + b_g) && \text{candidate: what to write}\\
      c_t &= f_t \odot c_{t-1} + i_t \odot \tilde c_t && \text{the conveyor belt}\\
      o_t &= \sigma(x_t W_{io} + h_{t-1} W_{ho} + b_o) && \text{output gate: what to show}\\
      h_t &= o_t \odot \tanh(c_t)
      \end{aligned}
      $$

      We train one on the **adding problem** (Hochreiter & Schmidhuber 1997): each step carries a value
      $u_t \sim U[0, 1]$ and a marker $m_t \in \{0, 1\}$; exactly two steps are marked (one in each half) and the
      target, read after the last step, is $\sum_t m_t u_t$. Always answering 1 gives MSE $1/6 \approx 0.167$.
      To do better the network must *write* the value at a marker, *keep* it for up to $T$ steps and *ignore*
      everything else — the three things the gates are for. Then we step through one sequence and watch them.
      """),
      params_cell("""
      T = 12 if SMALL else 50            # sequence length of the adding problem
      HIDDEN = 8 if SMALL else 32        # LSTM units
      BATCH = 16 if SMALL else 64
      STEPS = 20 if SMALL else 800       # Adam steps
      LR = 1e-2
      SEED = 0
      """),
      imports("""
      from jaxrnn.train.tasks import adding   # the data of `jaxrnn train`'s adding task
      """),
      md(r"""
      ## The model

      A cell is a value of pure functions: `cell.init(key, input_size)` returns the parameters (a NamedTuple),
      `cell.initial_carry(params, batch_shape)` the carry `LSTMCarry(h, c)`, and `jaxrnn.unroll` scans
      `cell.step` over time. A linear readout of the last $h_T$ predicts the sum.
      """),
      code("""
      cell = jaxrnn.lstm(HIDDEN)   # forget_bias=1.0: f starts near sigma(1) = 0.73

      def init(key):
        return {"cell": cell.init(key, 2),
                "w": np.random.default_rng(SEED).normal(size=HIDDEN) / np.sqrt(HIDDEN), "b": np.zeros(())}

      def predict(params, xs):                      # xs: [B, T, 2] -> [B]
        carry = cell.initial_carry(params["cell"], xs.shape[:1])
        _, hs = jaxrnn.unroll(cell, params["cell"], carry, xs)   # hs: [B, T, H]
        return hs[:, -1] @ params["w"] + params["b"]

      def loss_fn(params, xs, ys):
        return jnp.mean(jnp.square(predict(params, xs) - ys))

      optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(LR))

      @jax.jit
      def train_step(params, opt_state, xs, ys):
        loss, grads = jax.value_and_grad(loss_fn)(params, xs, ys)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

      params = init(jax.random.key(SEED))
      print(jax.tree.map(jnp.shape, params["cell"]))
      """),
      md(r"""
      `adding.batch(data, key, batch_size, seq_len=T)` is the pure batch function of `jaxrnn train`'s adding
      task: `inputs [B, T, 2]` (value, marker) and `targets [B]`. We draw every training batch, and 256 held-out
      sequences, in one jitted call.
      """),
      code("""
      N_TEST = 256
      draw = jax.jit(adding.batch, static_argnums=2, static_argnames="seq_len")
      xs_all, ys_all = map(np.asarray, draw((), jax.random.key(SEED + 1), STEPS * BATCH + N_TEST, seq_len=T))
      train_xs = xs_all[N_TEST:].reshape(STEPS, BATCH, T, 2)
      train_ys = ys_all[N_TEST:].reshape(STEPS, BATCH)
      test_xs, test_ys = xs_all[:N_TEST], ys_all[:N_TEST]
      marked = np.flatnonzero(test_xs[0, :, 1])
      print(f"sequence 0: markers at steps {marked}, values {test_xs[0, marked, 0].round(3)}, target {test_ys[0]:.3f}")

      opt_state = optimizer.init(params)
      losses, start = [], time.perf_counter()
      for step in range(STEPS):
        params, opt_state, loss = train_step(params, opt_state, train_xs[step], train_ys[step])
        losses.append(loss)
      losses = np.asarray(losses)
      print(f"{STEPS} steps in {time.perf_counter() - start:.1f}s; last-50 mean MSE {np.mean(losses[-50:]):.4f} "
            f"(baseline {adding.BASELINE_MSE:.3f})")

      fig, ax = plt.subplots(figsize=(6, 3.2))
      ax.plot(losses, lw=1, label="LSTM")
      ax.axhline(adding.BASELINE_MSE, color="gray", ls="--", label="always predict 1")
      ax.set(yscale="log", xlabel="step", ylabel="MSE", title=f"adding problem, T = {T}")
      ax.legend()
      fig.tight_layout()
      fig.savefig(os.path.join(OUT_DIR, "adding_loss.png"))
      """),
      md(r"""
      ## Stepping through one sequence

      `jaxrnn.unroll(..., return_all_carries=True)` also returns the carry after every step: `carries.c[t]` is
      $c_t$ and `carries.h[t]` is $h_t$. The gates are not part of the carry, but they are a function of
      $x_t$ and $h_{t-1}$, so we recompute them from the parameters with the equations above — and check that
      the recomputed conveyor belt $c_t = f_t \odot c_{t-1} + i_t \odot \tilde c_t$ matches the cell's.
      """),
      code("""
      @jax.jit
      def trace(params, xs):
        p = params["cell"]
        _, hs, carries = jaxrnn.unroll(cell, p, cell.initial_carry(p, xs.shape[:1]), xs, return_all_carries=True)
        return carries, hs[:, -1] @ params["w"] + params["b"]

      # carries: LSTMCarry(h=[B, T, H], c=[B, T, H]), the carry after every step.
      carries, preds = jax.tree.map(np.asarray, trace(params, test_xs))
      x, ys = test_xs, test_ys
      p = jax.tree.map(np.asarray, params["cell"])
      print(f"held-out MSE {np.mean((preds - ys) ** 2):.4f}")

      # The gates, recomputed from x_t and h_{t-1} with the fused kernels (blocks [i, f, g, o]).
      h_prev = np.concatenate([np.zeros_like(carries.h[:, :1]), carries.h[:, :-1]], axis=1)
      z = x @ p.w_i + h_prev @ p.w_h + p.b
      sigmoid = lambda a: 1 / (1 + np.exp(-a))
      zi, zf, zg, zo = np.split(z, 4, axis=-1)
      i_gate, f_gate, g_cand, o_gate = sigmoid(zi), sigmoid(zf), np.tanh(zg), sigmoid(zo)

      c_prev = np.concatenate([np.zeros_like(carries.c[:, :1]), carries.c[:, :-1]], axis=1)
      c_check = f_gate * c_prev + i_gate * g_cand
      print("max |c (recomputed) - c (jaxrnn)| =", np.abs(c_check - carries.c).max())
      print(f"sequence 0: prediction {preds[0]:.3f}, target {ys[0]:.3f}")
      """),
      md(r"""
      ## The gates over time

      Rows are units, columns are time steps; the dashed lines are the two marked steps. Look for units whose
      **input gate** $i_t$ opens exactly at the markers (write), whose **forget gate** $f_t$ stays near 1 between
      them (keep), and whose **cell state** $c_t$ steps at a marker and then stays flat — the conveyor belt
      carrying the marked value to the end.
      """),
      code("""
      # Which units store the marked values? For every held-out sequence, the jump of c at each marker,
      # c_t - c_{t-1} = (f_t - 1) c_{t-1} + i_t g_t, correlated with the marked value u_t.
      rows = np.arange(len(x))
      first, second = x[..., 1].argmax(1), T - 1 - x[:, ::-1, 1].argmax(1)
      def corr_with_value(t):
        jump = carries.c[rows, t] - c_prev[rows, t]                   # [B, H]
        return np.array([np.corrcoef(jump[:, u], x[rows, t, 0])[0, 1] for u in range(HIDDEN)])
      corr = (np.abs(corr_with_value(first)) + np.abs(corr_with_value(second))) / 2
      order = np.argsort(-np.nan_to_num(corr))                         # most value-storing units first
      print("units that store the marked value best:", order[:3], "mean |corr|", corr[order[:3]].round(2))

      b = 0                                                           # the sequence we look at
      marks = np.flatnonzero(x[b, :, 1])
      panels = [("forget gate $f_t$", f_gate, "viridis", (0, 1)), ("input gate $i_t$", i_gate, "viridis", (0, 1)),
                ("output gate $o_t$", o_gate, "viridis", (0, 1)), ("cell state $c_t$", carries.c, "RdBu_r", None)]
      fig, axes = plt.subplots(len(panels) + 1, 1, figsize=(8, 10), sharex=True,
                               gridspec_kw={"height_ratios": [1] + [2] * len(panels)})
      axes[0].bar(np.arange(T), x[b, :, 0], width=0.8, color=np.where(x[b, :, 1] > 0, "C3", "0.7"))
      axes[0].set_xlim(-0.5, T - 0.5)
      axes[0].set(ylabel="$u_t$", title=f"one sequence: marked values {x[b, marks, 0].round(2)}, "
                  f"target {float(ys[b]):.2f}")
      for ax, (name, val, cmap, lim) in zip(axes[1:], panels):
        v = val[b][:, order].T                                       # [H, T], most marker-driven units on top
        if lim is None:
          m = np.abs(v).max()
          lim = (-m, m)
        im = ax.imshow(v, aspect="auto", cmap=cmap, vmin=lim[0], vmax=lim[1], interpolation="nearest")
        ax.set_ylabel(f"{name}\\nunit (sorted)")
        fig.colorbar(im, cax=ax.inset_axes([1.01, 0, 0.015, 1]))   # outside: all panels keep one time axis
      for ax in axes:
        for t in marks:
          ax.axvline(t, color="C3", ls="--", lw=1)
      axes[-1].set_xlabel("time step t")
      fig.tight_layout()
      fig.savefig(os.path.join(OUT_DIR, "lstm_gates.png"))
      """),
      md(r"""
      ## The conveyor belt of the most marker-driven units

      For the top units: the cell state (thick), the input gate and the forget gate. A unit that has learned the
      task writes $i_t \tilde c_t$ at a marker and keeps it with $f_t \approx 1$ — that is how a gradient can
      flow from the target back to the marked step: $\partial c_T / \partial c_t = \prod_{s>t} f_s$ (along
      the direct path), which stays near 1 when the forget gate is open.
      """),
      code("""
      top = order[:3]
      fig, axes = plt.subplots(2, len(top), figsize=(12, 5), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
      for j, u in enumerate(top):
        axes[0, j].plot(carries.c[b, :, u], lw=2.5, color="k", label="cell state $c_t$")
        axes[0, j].plot(carries.h[b, :, u], lw=1, color="C4", label="output $h_t$")
        axes[0, j].set_title(f"unit {u} (|corr| with the marked value {corr[u]:.2f})")
        axes[1, j].plot(i_gate[b, :, u], color="C0", label="input $i_t$")
        axes[1, j].plot(f_gate[b, :, u], color="C2", label="forget $f_t$")
        axes[1, j].plot(o_gate[b, :, u], color="C1", label="output $o_t$")
        axes[1, j].set(ylim=(-0.05, 1.05), xlabel="t")
        for ax in axes[:, j]:
          for t in marks:
            ax.axvline(t, color="C3", ls="--", lw=1)
      axes[0, 0].legend(fontsize=8)
      axes[1, 0].legend(fontsize=8)
      fig.tight_layout()
      fig.savefig(os.path.join(OUT_DIR, "lstm_conveyor.png"))

      """),
      md(r"""
      In a run at the default sizes (T = 50, H = 32, 800 steps, held-out MSE 0.001), the best unit (|corr| 0.97)
      was a textbook conveyor belt: its input gate stayed shut ($i_t \approx 0.02$) except for a spike at each
      marker, its forget gate sat at $f_t \approx 1$, and its cell state stepped at each marker and then stayed
      put until the end. Other units held the values in a noisier, distributed way, and the vertical stripes in
      the heat maps show that *all* gates react to the marker input.

      **What to take away.** The forget gate is a learned, input-dependent decay: with $f \approx 1$ the cell
      is an accumulator and information (and gradient) passes many steps unchanged; the input gate decides *when*
      to write (at the markers, not at the distractors); the output gate decides when the stored value is exposed
      to $h_t$ (and so to the next step's gates and the readout). Compare with notebook 02, where the plain tanh
      RNN has no such path and its gradient vanishes geometrically in $T$.
      """),
  ]



def imports(extra=""):
  return code(IMPORTS.strip("\n") + "\n" + textwrap.dedent(extra).strip("\n"))


@notebook("02_long_term_dependencies")
def nb02():
  return [
      md(r"""
      # Long-term dependencies: why the tanh RNN forgets and the LSTM does not

      Backpropagation through time multiplies Jacobians. For a plain RNN $h_t = \tanh(x_t W_i + h_{t-1} W_h + b)$,

      $$
      \frac{\partial h_T}{\partial h_t} = \prod_{s=t+1}^{T} \operatorname{diag}(1 - h_s^2)\, W_h^\top ,
      $$

      a product of $T - t$ matrices: its norm shrinks (or grows) geometrically in $T - t$ unless every factor has
      norm 1 (Bengio, Simard & Frasconi 1994; Pascanu, Mikolov & Bengio 2013). The signal from step $t$ that
      reaches the loss at step $T$ vanishes, so the network cannot learn what step $t$ should have stored.

      The LSTM's cell state adds a path that is a product of **gates**, not of weight matrices:
      $c_t = f_t \odot c_{t-1} + i_t \odot \tilde c_t$, so along it
      $\partial c_T / \partial c_t = \prod_{s>t} \operatorname{diag}(f_s)$, which stays near 1 while the forget gate
      is open (the "constant error carousel" of Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al.
      2000). The GRU has the same kind of path, $h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$, with
      $\prod_s \operatorname{diag}(z_s)$.

      We measure $\lVert \partial h_T / \partial x_t \rVert_F$ — the full Jacobian of the last state with respect to
      each input, with `jax.jacrev` — as a function of the distance $T - t$, at initialisation, then train the three
      cells on the adding problem at growing $T$.
      """),
      params_cell("""
      T_GRAD = 20 if SMALL else 150        # sequence length for the gradient norms
      HIDDEN = 8 if SMALL else 32
      N_SEQ = 2 if SMALL else 8            # random sequences averaged over
      TRAIN_TS = [8] if SMALL else [10, 50, 100]   # adding-problem lengths to train on
      STEPS = 10 if SMALL else 300
      BATCH = 8 if SMALL else 32
      LR = 1e-2
      SEED = 0
      """),
      imports("""
      from jaxrnn.train.tasks import adding
      """),
      code("""
      CELLS = {
          "tanh RNN": jaxrnn.simple_rnn(HIDDEN),
          "LSTM": jaxrnn.lstm(HIDDEN),                      # forget_bias = 1
          "LSTM, forget_bias=0": jaxrnn.lstm(HIDDEN, forget_bias=0.0),
          "GRU": jaxrnn.gru(HIDDEN),
      }
      F = 2   # the adding problem's two features (value, marker)

      def jacobian_norms(cell, params, xs):
        \"\"\"||d h_T / d x_t||_F for t = 0..T-1, averaged over the sequences xs [N, T, F]: [T].\"\"\"
        def last_h(x):                                   # one sequence [T, F] -> h_T [H]
          _, hs = jaxrnn.unroll(cell, params, cell.initial_carry(params), x)
          return hs[-1]

        jac = jax.vmap(jax.jacrev(last_h))(xs)           # [N, H, T, F]
        return jnp.sqrt(jnp.sum(jac ** 2, axis=(1, 3))).mean(0)

      jacobian_norms = jax.jit(jacobian_norms, static_argnums=0)   # one compilation per cell
      # Inputs like the adding problem's: a value in [0, 1] and a marker that is almost always 0.
      rng = np.random.default_rng(SEED)
      grad_xs = np.stack([rng.uniform(size=(N_SEQ, T_GRAD)), rng.uniform(size=(N_SEQ, T_GRAD)) < 2 / T_GRAD],
                         axis=-1).astype(np.float32)
      norms = {name: np.asarray(jacobian_norms(cell, cell.init(jax.random.key(SEED), F), grad_xs))
               for name, cell in CELLS.items()}

      fig, ax = plt.subplots(figsize=(6.5, 4))
      distance = T_GRAD - 1 - np.arange(T_GRAD)            # T - t
      for name, n in norms.items():
        ax.plot(distance, n, label=name)
      ax.set(yscale="log", xlabel="distance T - t (steps)", ylabel=r"$\\|\\partial h_T / \\partial x_t\\|_F$",
             title=f"gradient through time at initialisation (H = {HIDDEN})")
      ax.legend()
      fig.tight_layout()
      fig.savefig(os.path.join(OUT_DIR, "gradient_norms.png"))
      d = min(50, T_GRAD - 1)
      for name, n in norms.items():   # n[-1]: distance 0; n[-1 - d]: distance d
        print(f"{name:20s} mean decay per step over the last {d} steps: {(n[-1 - d] / n[-1]) ** (1 / d):.3f}")
      """),
      md(r"""
      At initialisation the tanh RNN's sensitivity to an input decays geometrically with its distance (a straight
      line on the log scale); the LSTM's decays too — its forget gate starts at $\sigma(1) \approx 0.73$, not 1 —
      but more slowly, and more slowly still than with `forget_bias=0` ($\sigma(0) = 0.5$), which is why the forget
      bias of 1 is the default (Jozefowicz et al. 2015). The difference that matters is that the gates are
      *learned*: training can open the LSTM's path to $f \approx 1$, while the tanh RNN would need its whole
      Jacobian product to stay near norm 1.

      ## Training on the adding problem at growing T

      The same model as in notebook 01 (cell, then a linear readout of $h_T$), Adam with clipping, fresh batches
      from `jaxrnn.train.tasks.adding`. The baseline (always predict 1) is MSE $1/6$.
      """),
      code("""
      optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(LR))

      def train(cell, data, seed=SEED):
        \"\"\"Trains cell + readout on data = (xs [STEPS, B, T, 2], ys [STEPS, B]); returns the losses [STEPS].\"\"\"
        params = {"cell": cell.init(jax.random.key(seed), F),
                  "w": np.random.default_rng(seed).normal(size=HIDDEN) / np.sqrt(HIDDEN), "b": np.zeros(())}

        def loss_fn(params, xs, ys):
          carry = cell.initial_carry(params["cell"], xs.shape[:1])
          _, hs = jaxrnn.unroll(cell, params["cell"], carry, xs)
          return jnp.mean(jnp.square(hs[:, -1] @ params["w"] + params["b"] - ys))

        def step(state, batch):
          params, opt_state = state
          loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
          updates, opt_state = optimizer.update(grads, opt_state, params)
          return (optax.apply_updates(params, updates), opt_state), loss

        @jax.jit
        def run(params, data):            # the whole training run is one jitted lax.scan over the batches
          (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), data)
          return losses, params

        losses, params = run(params, data)
        return np.asarray(losses), params

      # The same batches for every cell: all of them drawn at once from jaxrnn.train's adding task.
      draw = jax.jit(adding.batch, static_argnums=2, static_argnames="seq_len")

      TRAIN_CELLS = {k: CELLS[k] for k in ("tanh RNN", "LSTM", "GRU")}
      curves, trained = {}, {}
      for T in TRAIN_TS:
        xs, ys = draw((), jax.random.key(SEED + T), STEPS * BATCH, seq_len=T)
        data = (xs.reshape(STEPS, BATCH, T, F), ys.reshape(STEPS, BATCH))
        for name, cell in TRAIN_CELLS.items():
          start = time.perf_counter()
          curves[name, T], trained[name, T] = train(cell, data)
          print(f"T = {T:4d}  {name:9s} final MSE {curves[name, T][-20:].mean():.4f}  "
                f"({time.perf_counter() - start:.1f}s)")
      """),
      code("""
      def smooth(y, k=10):
        k = max(1, min(k, len(y) // 2))
        return np.convolve(y, np.ones(k) / k, mode="valid")

      fig, axes = plt.subplots(1, len(TRAIN_TS), figsize=(4 * len(TRAIN_TS), 3.4), sharey=True, squeeze=False)
      for ax, T in zip(axes[0], TRAIN_TS):
        for j, name in enumerate(TRAIN_CELLS):
          ax.plot(smooth(curves[name, T]), color=f"C{j}", label=name)
        ax.axhline(adding.BASELINE_MSE, color="gray", ls="--", lw=1, label="baseline")
        ax.set(yscale="log", title=f"adding, T = {T}", xlabel="step")
      axes[0, 0].set_ylabel("MSE (smoothed)")
      axes[0, 0].legend(fontsize=8)
      fig.tight_layout()
      fig.savefig(os.path.join(OUT_DIR, "adding_growing_T.png"))
      """),
      md(r"""
      ## The gradient after training

      Back to the Jacobian norms, now with the parameters trained on the longest $T$ (the same inputs as above,
      so the jitted `jacobian_norms` is reused without compiling again).
      """),
      code("""
      T_LAST = TRAIN_TS[-1]
      fig, ax = plt.subplots(figsize=(6.5, 4))
      for j, name in enumerate(TRAIN_CELLS):
        n = np.asarray(jacobian_norms(CELLS[name], trained[name, T_LAST]["cell"], grad_xs))
        ax.plot(distance, norms[name], color=f"C{j}", ls=":", lw=1)
        ax.plot(distance, n, color=f"C{j}", label=f"{name}, trained on T = {T_LAST}")
        print(f"{name:9s} |dh_T/dx_t| at distance {d}: {norms[name][-1 - d]:.1e} at init, {n[-1 - d]:.1e} trained")
      ax.set(yscale="log", xlabel="distance T - t (steps)", ylabel=r"$\\|\\partial h_T / \\partial x_t\\|_F$",
             title="after training (dotted: at initialisation)")
      ax.legend()
      fig.tight_layout()
      fig.savefig(os.path.join(OUT_DIR, "gradient_norms_trained.png"))
      """),
      md(r"""
      As $T$ grows the tanh RNN stays at the baseline — it can still use the marker it saw recently, but the first
      marked value lies beyond the reach of its vanishing gradient — while the gated cells solve the task with the
      same number of steps. The trained Jacobians say why: in a run at the default sizes, the trained LSTM's and
      GRU's $\lVert \partial h_T / \partial x_t \rVert$ stayed around $10^{-2}$ at every distance (flat, where
      it had decayed geometrically at initialisation) — training opened the gated path — while the tanh RNN's
      still decayed geometrically, now even faster. Gradient clipping (in the optimizer above) handles the opposite
      failure, exploding gradients; nothing in the optimizer fixes vanishing ones — the architecture has to.
      """),
  ]


@notebook("03_variants")
def nb03():
  return [
      md(r"""
      # LSTM variants: which parts matter?

      Greff et al. ("LSTM: A Search Space Odyssey", 2015) took the "vanilla" LSTM — input, forget and output gates
      plus **peepholes** (Gers & Schmidhuber 2000: the gates also look at the cell, $p \odot c$) — and removed or
      changed one part at a time:

      | variant | change |
      |---|---|
      | NIG / NFG / NOG | no input / forget / output gate ($i = 1$, $f = 1$, $o = 1$) |
      | NIAF / NOAF | no input activation ($\tilde c = z$) / no output activation ($h = o \odot c$) |
      | NP | no peepholes (this is `jaxrnn.lstm`, colah's LSTM) |
      | CIFG | coupled input and forget gate, $f = 1 - i$ (the GRU's trick) |
      | FGR | full gate recurrence: every gate at $t-1$ feeds every gate at $t$ |

      The vanilla cell, with peepholes:

      $$
      \begin{aligned}
      i_t &= \sigma(x_t W_{ii} + h_{t-1} W_{hi} + p_i \odot c_{t-1} + b_i), \quad
      f_t = \sigma(x_t W_{if} + h_{t-1} W_{hf} + p_f \odot c_{t-1} + b_f) \\
      c_t &= f_t \odot c_{t-1} + i_t \odot \tanh(x_t W_{ig} + h_{t-1} W_{hg} + b_g) \\
      o_t &= \sigma(x_t W_{io} + h_{t-1} W_{ho} + p_o \odot c_t + b_o), \quad h_t = o_t \odot \tanh(c_t)
      \end{aligned}
      $$

      Their finding, over speech, handwriting and music: no variant clearly beats vanilla; the forget gate and the
      output activation matter most; coupling the gates (CIFG) and dropping peepholes (NP) cost little. In jaxrnn
      every variant is `jaxrnn.lstm(H, variant=name)` (or `jaxrnn.peephole_lstm` with flags); colah's coupled form
      $c_t = f_t \odot c_{t-1} + (1 - f_t) \odot \tilde c_t$ is `jaxrnn.coupled_lstm`. We compare them, and the GRU,
      on one small task: the adding problem (see notebook 01), one seed each — a toy version of the study.
      """),
      params_cell("""
      T = 10 if SMALL else 40
      HIDDEN = 8 if SMALL else 32
      STEPS = 10 if SMALL else 400
      BATCH = 8 if SMALL else 32
      LR = 1e-2
      SEED = 0
      ALL_VARIANTS = ["NP (jaxrnn.lstm)", "vanilla", "NIG", "NFG", "NOG", "NIAF", "NOAF", "CIFG", "FGR",
                      "coupled (colah)", "GRU"]
      # The test run keeps one cell of each kind of parameters/carry (peepholes, FGR carry, coupled, GRU).
      VARIANTS = ["vanilla", "FGR", "coupled (colah)", "GRU"] if SMALL else ALL_VARIANTS
      """),
      imports("""
      from jaxrnn.train.tasks import adding
      """),
      code("""
      def make_cell(name):
        if name == "NP (jaxrnn.lstm)":
          return jaxrnn.lstm(HIDDEN)
        if name == "coupled (colah)":
          return jaxrnn.coupled_lstm(HIDDEN)
        if name == "GRU":
          return jaxrnn.gru(HIDDEN)
        return jaxrnn.lstm(HIDDEN, variant=name)     # a Greff et al. variant: jaxrnn.peephole_lstm

      optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(LR))

      def train(cell, seed=SEED):
        \"\"\"One training run on the shared batches, jitted as a whole (lax.scan over steps).\"\"\"
        params = {"cell": cell.init(jax.random.key(seed), 2),
                  "w": np.random.default_rng(seed).normal(size=HIDDEN) / np.sqrt(HIDDEN), "b": np.zeros(())}

        def loss_fn(params, xs, ys):
          carry = cell.initial_carry(params["cell"], xs.shape[:1])
          _, hs = jaxrnn.unroll(cell, params["cell"], carry, xs)
          return jnp.mean(jnp.square(hs[:, -1] @ params["w"] + params["b"] - ys))

        def step(state, batch):
          params, opt_state = state
          loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
          updates, opt_state = optimizer.update(grads, opt_state, params)
          return (optax.apply_updates(params, updates), opt_state), loss

        @jax.jit
        def run(params, train_data, test_data):
          (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), train_data)
          return params, losses, loss_fn(params, *test_data)

        return run(params, train_data, test_data)

      # The same batches for every variant, and 1000 held-out sequences, drawn at once from the adding task.
      N_TEST = 1000
      xs, ys = jax.jit(adding.batch, static_argnums=2, static_argnames="seq_len")(
          (), jax.random.key(SEED + 1), STEPS * BATCH + N_TEST, seq_len=T)
      train_data = (xs[N_TEST:].reshape(STEPS, BATCH, T, 2), ys[N_TEST:].reshape(STEPS, BATCH))
      test_data = (xs[:N_TEST], ys[:N_TEST])

      results = {}
      for name in VARIANTS:
        cell = make_cell(name)
        start = time.perf_counter()
        params, losses, test = train(cell)
        results[name] = dict(cell=cell.name, params=sum(x.size for x in jax.tree.leaves(params["cell"])),
                             losses=np.asarray(losses), test=float(test), seconds=time.perf_counter() - start)
      """),
      md(r"""
      ## Results

      Held-out MSE on 1000 fresh sequences after training (baseline 0.167), the number of recurrent parameters,
      and the first step at which the smoothed training loss falls below 0.05 ("—": never).
      """),
      code("""
      def smooth(y, k=20):
        k = max(1, min(k, len(y) // 2))
        return np.convolve(y, np.ones(k) / k, mode="valid")

      def solved_at(losses, level=0.05):
        below = np.flatnonzero(smooth(losses) < level)
        return str(below[0]) if below.size else "—"

      rows = [(name, r["cell"], r["params"], f"{r['test']:.4f}", solved_at(r["losses"]), f"{r['seconds']:.1f}")
              for name, r in sorted(results.items(), key=lambda kv: kv[1]["test"])]
      header = ("variant", "cell.name", "params", "test MSE", "step < 0.05", "seconds")
      widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
      for row in [header] + rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)))
      """),
      code("""
      fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
      styles = {"GRU": dict(color="k", lw=2), "NP (jaxrnn.lstm)": dict(color="C0", lw=2), "vanilla": dict(color="C1", lw=2)}
      for j, (name, r) in enumerate(results.items()):
        ax1.plot(smooth(r["losses"]), label=name, **styles.get(name, dict(color=f"C{j % 10}", lw=1, alpha=0.8)))
      ax1.axhline(adding.BASELINE_MSE, color="gray", ls="--", lw=1)
      ax1.set(yscale="log", xlabel="step", ylabel="training MSE (smoothed)", title=f"adding problem, T = {T}")
      ax1.legend(fontsize=7, ncol=2)
      names = sorted(results, key=lambda n: results[n]["test"])
      ax2.barh(names, [results[n]["test"] for n in names], color="C0")
      ax2.axvline(adding.BASELINE_MSE, color="gray", ls="--", lw=1, label="baseline")
      ax2.set(xscale="log", xlabel="held-out MSE (lower is better)")
      ax2.invert_yaxis()
      fig.tight_layout()
      fig.savefig(os.path.join(OUT_DIR, "variants.png"))
      """),
      md(r"""
      What a run at the default sizes (T = 40, H = 32, 400 steps, seed 0) gave: every variant beat the baseline;
      the two coupled cells (colah's coupled LSTM, the GRU) learned fastest; removing peepholes (NP, `jaxrnn.lstm`)
      made no difference; and the worst were **NFG** (no forget gate: the cell can never clear what the input gate
      let in between the markers, so the stored sum is polluted) and **FGR** (four times the parameters, slower
      to start). That matches Greff et al.'s ranking in spirit — the forget gate is essential, coupling and
      peepholes are not — but one seed on one toy task is an anecdote, not a benchmark: rerun with other seeds
      (`train(cell, seed)`) before drawing conclusions.
      """),
  ]


@notebook("04_char_lm")
def nb04():
  return [
      md(r"""
      # A character-level language model, and what its cells respond to

      Karpathy's [The Unreasonable Effectiveness of Recurrent Neural Networks](https://karpathy.github.io/2015/05/21/rnn-effectiveness/)
      trained an LSTM to predict the next character of the Linux source and found single cells that track
      quotes, line length or indentation. We do the same, briefly, on `jaxrnn train`'s default task: the `.py`
      files of the running Python's standard library (nothing is downloaded). The model maps each character to an
      embedding $e_t$, runs the LSTM, and reads out logits for the next character:

      $$ (c_t, h_t) = \mathrm{LSTM}(e_t, (c_{t-1}, h_{t-1})), \qquad
      p(x_{t+1} \mid x_{\le t}) = \mathrm{softmax}(h_t W + b), $$

      trained by cross-entropy (nats per character; $\div \ln 2$ for bits). Everything below is the library code
      behind the `jaxrnn` command: `jaxrnn.train.config.from_dict` → `jaxrnn.train.build` (task, model, optimizer,
      one jitted train step) → `jaxrnn.train.sample_text`.
      """),
      params_cell("""
      HIDDEN = 16 if SMALL else 128
      SEQ_LEN = 16 if SMALL else 64          # BPTT window
      BATCH = 8 if SMALL else 32
      STEPS = 5 if SMALL else 600
      CORPUS_CHARS = 20_000 if SMALL else 300_000
      TEMPERATURES = [0.8] if SMALL else [0.5, 1.0]
      SAMPLE_LEN = 40 if SMALL else 300
      SHOW_CHARS = 120 if SMALL else 600     # characters in the activation pictures
      """),
      imports("""
      import jaxrnn.train
      from jaxrnn.train import config
      """),
      code("""
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
      for step in range(STEPS):
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
      """),
      md(r"""
      ## Sampling with temperature

      The model samples $x_{t+1} \sim \mathrm{softmax}(\text{logits} / \tau)$ and feeds it back. $\tau < 1$
      sharpens the distribution (safer, more repetitive text), $\tau > 1$ flattens it (more variety, more errors).
      """),
      code("""
      for tau in TEMPERATURES:
        text = jaxrnn.train.sample_text(run, state.params, prompt="def ", length=SAMPLE_LEN, seed=0, temperature=tau)
        print(f"--- temperature {tau} ---\\n{text}\\n")
      """),
      md(r"""
      ## What individual cells respond to

      We run the trained LSTM over held-out text with `jaxrnn.unroll(..., return_all_carries=True)` and colour each
      character by one unit's $\tanh(c_t)$ after reading it (Karpathy's pictures: red positive, blue negative).
      Instead of browsing all units by eye, we pick, for a few simple properties of the text, the unit whose
      activation correlates most with it. With a small, briefly trained model the correspondence is rough; train
      longer (`STEPS`, `HIDDEN`) for sharper cells.
      """),
      code("""
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
        c_col = 0 if ch == "\\n" else c_col + 1
        if quote is None and ch in "'\\"":
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
      """),
      code("""
      def show_text(ax, text, values, width=80, title=""):
        \"\"\"Draws text in a monospace grid, each character's background coloured by its value in [-1, 1].\"\"\"
        cells, r, c = [], 0, 0
        for ch, v in zip(text, values):
          if ch == "\\n":
            cells.append((r, c, "\\u21b5", v)); r, c = r + 1, 0
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

      n_lines = text.count("\\n") + len(text) // 80 + 1
      fig, axes = plt.subplots(len(picks), 1, figsize=(11, 0.22 * n_lines * len(picks) + 1.2))
      for ax, (fname, u, r) in zip(np.atleast_1d(axes), picks):
        show_text(ax, text, act[:, u], title=f"unit {u}: tanh(c), correlation {r:+.2f} with '{fname}'")
      fig.tight_layout()
      fig.savefig(os.path.join(OUT_DIR, "charlm_cells.png"), dpi=110)
      """),
  ]


@notebook("05_attention")
def nb05():
  return [
      md(r"""
      # Attention: learning where to look

      An encoder–decoder without attention must squeeze the whole source into one vector $h_N$ (Cho et al. 2014;
      Sutskever et al. 2014). Bahdanau, Cho & Bengio (2015) let the decoder look back: at each output step $t$ it
      scores every encoder state $\bar h_s$ against its own state $q_t$, normalises the scores, and reads a weighted
      average, the **context**:

      $$
      e_{ts} = v^\top \tanh(W_a q_t + U_a \bar h_s + b), \qquad
      \alpha_{ts} = \frac{\exp e_{ts}}{\sum_{s'} \exp e_{ts'}}, \qquad
      \text{ctx}_t = \sum_s \alpha_{ts}\, \bar h_s .
      $$

      The weights $\alpha_{t\cdot}$ form the **alignment matrix**. On string reversal, output $t$ of a length-$n$
      input must copy input $n - 1 - t$, so a model that has learned the task should look at an anti-diagonal.

      In jaxrnn: `jaxrnn.seq2seq(encoder_cell, decoder_cell, jaxrnn.additive_attention(A), ...)` (the decoder is
      `jaxrnn.attention_wrapper` around any cell), trained by teacher forcing with `model.loss`; `model.greedy_decode`
      returns the tokens *and* the attention weights of every step. The data are random digit strings from
      `jaxrnn.attention.tasks.digit_task` (as in `benchmarks/seq2seq_reversal.py`).
      """),
      params_cell("""
      HIDDEN = 8 if SMALL else 64
      EMBED = 8 if SMALL else 32
      MAX_LEN = 6 if SMALL else 12            # source strings have lengths in [MIN_LEN, MAX_LEN]
      MIN_LEN = 3 if SMALL else 4
      BATCH = 8 if SMALL else 64
      STEPS = 10 if SMALL else 1200
      LR = 3e-3
      SEED = 0
      """),
      imports("""
      from jaxrnn.attention import tasks
      """),
      code("""
      model = jaxrnn.seq2seq(jaxrnn.gru(HIDDEN), jaxrnn.gru(HIDDEN), jaxrnn.additive_attention(HIDDEN),
                             source_vocab_size=tasks.VOCAB_SIZE, target_vocab_size=tasks.VOCAB_SIZE,
                             embed_size=EMBED, attention_layer_size=HIDDEN)
      optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(LR))

      @jax.jit
      def train(key):
        \"\"\"The whole training run as one jitted lax.scan over steps: (params, losses).\"\"\"
        k_init, k_data = jax.random.split(key)
        params = model.init(k_init)

        def step(state, i):
          params, opt_state = state
          b = tasks.digit_task(jax.random.fold_in(k_data, i), BATCH, max_length=MAX_LEN, min_length=MIN_LEN)
          loss, grads = jax.value_and_grad(model.loss)(params, b.src, b.src_lengths, b.tgt_in, b.tgt_out,
                                                       b.tgt_lengths)
          updates, opt_state = optimizer.update(grads, opt_state, params)
          return (optax.apply_updates(params, updates), opt_state), loss

        (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), jnp.arange(STEPS))
        return params, losses

      start = time.perf_counter()
      params, losses = train(jax.random.key(SEED))
      losses = np.asarray(losses)
      print(f"{STEPS} steps in {time.perf_counter() - start:.1f}s (compilation included); "
            f"final loss {losses[-20:].mean():.3f} nats/token")
      """),
      code("""
      @jax.jit
      def test(params, key):
        b = tasks.digit_task(key, 500, max_length=MAX_LEN, min_length=MIN_LEN)
        tokens, weights = model.greedy_decode(params, b.src, b.src_lengths, MAX_LEN + 1)
        return b, tokens, weights, tasks.sequence_accuracy(tokens, b.tgt_out, b.tgt_lengths)

      b, tokens, weights, acc = test(params, jax.random.key(10_000))
      print(f"exact-sequence accuracy of greedy decoding on 500 fresh strings: {float(acc):.3f}")

      def show(seq):
        return "".join(str(int(t) - tasks.FIRST_DIGIT) if t >= tasks.FIRST_DIGIT else
                       {tasks.EOS: "<eos>", tasks.BOS: "<bos>"}.get(int(t), "") for t in seq)

      k = int(np.argmax(np.asarray(b.src_lengths)))      # a longest example
      n = int(b.src_lengths[k])
      print("source :", show(b.src[k, :n]))
      print("decoded:", show(tokens[k]))
      """),
      code("""
      w = np.asarray(weights[k, : n + 1, :n])              # [output step (incl. EOS), source position]
      src_labels = [show([t]) for t in np.asarray(b.src[k, :n])]
      out_labels = [show([t]) for t in np.asarray(tokens[k, : n + 1])]

      fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1, 1.2]})
      ax1.plot(losses, lw=1)
      ax1.set(yscale="log", xlabel="step", ylabel="cross-entropy (nats/token)", title="training (teacher forcing)")
      im = ax2.imshow(w, cmap="Greys", vmin=0, vmax=1)
      ax2.set_xticks(range(n), src_labels)
      ax2.set_yticks(range(len(out_labels)), out_labels)
      ax2.set(xlabel="source position s", ylabel="output step t (greedy decoding)",
              title=r"alignment $\\alpha_{ts}$ (reversal)")
      fig.colorbar(im, ax=ax2, fraction=0.046)
      fig.tight_layout()
      fig.savefig(os.path.join(OUT_DIR, "alignment.png"))
      """),
      md(r"""
      Each row is one decoding step; a trained model's weight concentrates on the source digit it is about to
      write, tracing the anti-diagonal from the last digit to the first (the final `<eos>` row may look anywhere).
      The decoder never had to store the string: attention is a content-addressed read of the encoder's memory, and
      its gradient reaches every source position directly, in one step, whatever the length. For a table with and
      without attention at length 30, run `python benchmarks/seq2seq_reversal.py`.
      """),
  ]


@notebook("06_parallel_scans")
def nb06():
  return [
      md(r"""
      # Parallel scans: recurrences without a loop over time

      A recurrence whose gates read only the input, not $h_{t-1}$, is **linear** in the state:

      $$ h_t = a_t \odot h_{t-1} + b_t, \qquad a_t, b_t \text{ functions of } x_t . $$

      minGRU (Feng et al. 2024: $a_t = 1 - z_t$, $b_t = z_t \odot \tilde h_t$ with $z_t, \tilde h_t$ from $x_t$) and
      the LRU (Orvieto et al. 2023: a complex diagonal $\lambda$) are of this form. Composing two steps is again
      one step, $(a_1, b_1) \bullet (a_2, b_2) = (a_1 a_2,\; a_2 b_1 + b_2)$, and $\bullet$ is **associative**, so
      all $T$ states come out of one `jax.lax.associative_scan` of depth $O(\log T)$ (Blelloch 1990) instead of
      $T$ dependent steps. `jaxrnn.unroll(..., mode="sequence")` takes that path; `mode="step"` scans
      `cell.step` with `lax.scan`; both compute the same function. GRU and LSTM, whose gates read $h_{t-1}$, have
      only the sequential path.

      The parallel form does $O(T \log T)$ work (or $O(T)$ with more passes) against $O(T)$ for the loop, so it
      pays when the hardware has parallelism to spare — a GPU, or a CPU whose per-step loop overhead dominates.
      Below we time both paths as $T$ grows, forward only and forward + backward.
      """),
      params_cell("""
      TS = [16, 64] if SMALL else [64, 256, 1024, 4096]
      BATCH = 2 if SMALL else 8
      FEATURES = 4 if SMALL else 32
      HIDDEN = 8 if SMALL else 64
      REPEATS = 1 if SMALL else 3
      KINDS = ["fwd"] if SMALL else ["fwd", "f+b"]
      """),
      imports(""),
      code("""
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
      """),
      code("""
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
      """),
      md(r"""
      What to expect. On a CPU the sequential loop pays a fixed overhead for each of its $T$ dependent steps, while
      the associative scan makes a few large vectorised passes (with $O(T \log T)$ work); for minGRU's real scan
      the parallel path usually wins forward from a few hundred steps on (the README reports 2.8× at $T = 4096$ on
      this project's 2-core CPU), less so for forward + backward (whose backward pass is itself one reversed scan).
      The LRU scans **complex** pairs, whose arithmetic is slow on CPU, so there its parallel path can lose. On a GPU
      both gain far more, since the loop leaves almost all of the device idle. Timings on a shared machine are noisy
      (the curves above may zig-zag): rerun with larger `REPEATS` before quoting numbers;
      `benchmarks/parallel_vs_sequential.py` has more cells and options.
      """),
  ]



def main():
  for name, fn in NOTEBOOKS.items():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = fn()
    for i, cell in enumerate(nb.cells):
      cell.id = f"cell-{i:02d}"  # stable ids: regenerating gives no diff
    nbformat.validate(nb)
    path = HERE / f"{name}.ipynb"
    nbformat.write(nb, path)
    print("wrote", path.relative_to(HERE.parent))


if __name__ == "__main__":
  main()
