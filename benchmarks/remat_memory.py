"""Compiled temp memory of jax.grad through jaxrnn.unroll with and without remat (memory-bounded backprop).

Run: PYTHONPATH=. python benchmarks/remat_memory.py  (prints two Markdown tables; CPU or whatever backend JAX
picks): an LSTM at two lengths, then every combinator and nesting (issue 18's table: B=8 T=2000 F=16 H=64,
``jax.jit(jax.value_and_grad(loss))``), with the largest gradient difference between the two runs at T=50.

``--budget`` prints instead the table of ``remat=RematBudget(n)`` (:mod:`jaxrnn.checkpointing`) against
``remat=True`` and ``remat=False``: the levels, the checkpoints kept, compiled temp memory of the gradient of a loss
of the final carry (the checkpoints dominate) and of all outputs (``[T, B, H]`` outputs and their cotangents, which
no remat removes, dominate), the step evaluations per step in one forward + backward pass (counted with a host
callback in the step), the gradient's largest difference from ``remat=False``, and the median time of the
gradient. ``--T`` and ``--budgets`` choose the sizes.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn

B, F, H = 16, 32, 128


def temp_bytes(T, remat):
  cell = jaxrnn.lstm(H)
  params = cell.init(jax.random.key(0), F)
  carry = cell.initial_carry(params, (B,))
  xs = jnp.zeros((B, T, F), jnp.float32)
  loss = lambda p, x: jnp.sum(jaxrnn.unroll(cell, p, carry, x, remat=remat)[1] ** 2)
  stats = jax.jit(jax.grad(loss)).lower(params, xs).compile().memory_analysis()
  return stats.temp_size_in_bytes


def composites(h):
  """``(name, cell)`` for every combinator and a few nestings, around LSTM/GRU layers of width ``h``."""
  lstm, gru = jaxrnn.lstm(h), jaxrnn.gru(h)
  return [
      ("lstm", lstm),
      ("gru", gru),
      ("stack(lstm, lstm)", jaxrnn.stack(lstm, lstm)),
      ("residual(lstm(16))", jaxrnn.residual(jaxrnn.lstm(16))),
      ("learned_initial_carry(lstm)", jaxrnn.learned_initial_carry(lstm)),
      ("with_projection(lstm, 8)", jaxrnn.with_projection(lstm, 8)),
      ("with_input_transform(lstm, 8)", jaxrnn.with_input_transform(lstm, 8)),
      ("bidirectional(lstm, lstm)", jaxrnn.bidirectional(lstm, lstm)),
      ("dropout(lstm, 0.1, 0.1)", jaxrnn.dropout(lstm, 0.1, 0.1)),
      ("stack(stack(lstm), gru)", jaxrnn.stack(jaxrnn.stack(lstm), gru)),
      ("stack(lstm, lstm, dropout=0.2)", jaxrnn.stack(lstm, lstm, dropout=0.2)),
      ("stack(bidirectional(lstm, gru), lstm)", jaxrnn.stack(jaxrnn.bidirectional(lstm, gru), lstm)),
      ("variational_dropout(lstm)", jaxrnn.variational_dropout(lstm, 0.1, 0.1)),
      ("zoneout(lstm)", jaxrnn.zoneout(lstm, 0.1)),
      ("reset_on(lstm)", jaxrnn.reset_on(lstm)),
  ]


def composite_loss(cell, b, t, f):
  params = cell.init(jax.random.key(0), f)
  reset = cell.input_ndim != 1
  xs = jax.random.normal(jax.random.key(1), (b, t, f), jnp.float32)
  if reset:
    xs = (xs, jnp.arange(b * t).reshape(b, t) % 97 == 0)

  def loss(p, x, remat):
    _, hs = jaxrnn.unroll(cell, p, None, x, remat=remat, key=jax.random.key(2))
    return jnp.sum(jnp.sin(hs))

  return loss, params, xs


def composite_table(b=8, t=2000, f=16, h=64):
  print(f"\nEvery combinator: B={b} T={t} F={f} H={h}, float32, jit(value_and_grad(loss)), "
        f"backend={jax.default_backend()}")
  print("| cell | remat=False temp MiB | remat=True temp MiB | ratio | max grad diff (T=50) |")
  print("|---|---|---|---|---|")
  for name, cell in composites(h):
    loss, params, xs = composite_loss(cell, b, t, f)
    temps = []
    for remat in (False, True):
      fn = jax.jit(jax.value_and_grad(loss), static_argnums=2)
      temps.append(fn.lower(params, xs, remat).compile().memory_analysis().temp_size_in_bytes)
    loss, params, xs = composite_loss(cell, b, 50, f)
    g0, g1 = (jax.jit(jax.grad(loss), static_argnums=2)(params, xs, r) for r in (False, True))
    diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(c)))) for a, c in zip(jax.tree.leaves(g0),
                                                                                     jax.tree.leaves(g1)))
    print(f"| `{name}` | {temps[0] / 2**20:.1f} | {temps[1] / 2**20:.1f} | {temps[1] / temps[0]:.2f} | "
          f"{diff:.1e} |")


def budget_table(T, budgets, b=8, f=4, h=64, repeats=3):
  """The table of ``RematBudget`` against ``remat=True`` and ``False`` (see the module docstring)."""
  print(f"\nLSTM H={h} B={b} F={f} T={T}, float32, jit(grad(loss)), backend={jax.default_backend()}; loss of the "
        f"final carry (`final`) or of all outputs (`hs`); step calls per step in one forward + backward")
  print("| remat | levels | checkpoints | temp MiB (final) | temp MiB (hs) | step calls / T | max grad diff | "
        "grad ms (final) |")
  print("|---|---|---|---|---|---|---|---|")
  base = jaxrnn.lstm(h)
  calls = []

  def step(p, c, x):  # counts every evaluation of the step, recomputations included
    jax.debug.callback(lambda v: calls.append(1), c.h)
    return base.step(p, c, x)

  counting = base._replace(step=step, input_transform=None, step_transformed=None, sequence=None)
  params = base.init(jax.random.key(0), f)
  carry = base.initial_carry(params, (b,))
  xs = jax.random.normal(jax.random.key(1), (b, T, f), jnp.float32)
  final_loss = lambda c, r: lambda p: jnp.sum(jnp.tanh(jaxrnn.unroll(c, p, carry, xs, remat=r)[0].h))
  hs_loss = lambda c, r: lambda p: jnp.sum(jnp.tanh(jaxrnn.unroll(c, p, carry, xs, remat=r)[1]))
  reference = None
  for remat in [False, True] + [jaxrnn.RematBudget(n) for n in budgets]:
    levels = jaxrnn.checkpointing.plan(T, remat)
    temp = lambda fn: jax.jit(jax.grad(fn)).lower(params).compile().memory_analysis().temp_size_in_bytes / 2**20
    grad = jax.jit(jax.grad(final_loss(base, remat)))
    g = jax.block_until_ready(grad(params))
    reference = g if reference is None else reference
    diff = max(float(jnp.max(jnp.abs(a - r))) for a, r in zip(jax.tree.leaves(g), jax.tree.leaves(reference)))
    times = []
    for _ in range(repeats):
      start = time.perf_counter()
      jax.block_until_ready(grad(params))
      times.append(time.perf_counter() - start)
    counted = jax.jit(jax.grad(final_loss(counting, remat)))
    jax.block_until_ready(counted(params))
    jax.effects_barrier()
    calls.clear()
    jax.block_until_ready(counted(params))
    jax.effects_barrier()
    name = "False" if remat is False else "True" if remat is True else f"RematBudget({remat.carries})"
    checkpoints = T if len(levels) == 1 else sum(levels)
    print(f"| `{name}` | {levels if len(levels) < 8 else f'{len(levels)} levels'} | {checkpoints} | "
          f"{temp(final_loss(base, remat)):.2f} | {temp(hs_loss(base, remat)):.2f} | {len(calls) / T:.2f} | "
          f"{diff:.1e} | {1e3 * statistics.median(times):.0f} |", flush=True)


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--budget", action="store_true", help="the RematBudget table instead")
  parser.add_argument("--T", type=int, default=4000)
  parser.add_argument("--budgets", default="128,64,40,24")
  args = parser.parse_args()
  if args.budget:
    budget_table(args.T, [int(n) for n in args.budgets.split(",")])
    raise SystemExit
  print(f"LSTM H={H}, B={B}, F={F}, float32, backend={jax.default_backend()}")
  print("| T | remat=False temp MiB | remat=True temp MiB | ratio |")
  print("|---|---|---|---|")
  for T in (1000, 4000):
    a, b = temp_bytes(T, False), temp_bytes(T, True)
    print(f"| {T} | {a / 2**20:.1f} | {b / 2**20:.1f} | {a / b:.1f}x |")
  composite_table()
