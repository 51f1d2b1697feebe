"""Training memory at T = 100,000: compiled temp memory of value_and_grad through jaxrnn.unroll, with and without
remat, and the measured time and peak RSS of one remat step (tiny LSTM, as in tests/test_long_sequences.py).

Run: PYTHONPATH=. python benchmarks/long_sequence_memory.py   (CPU or whatever backend JAX picks).
"""

import resource
import time

import jax
import jax.numpy as jnp

import jaxrnn

T = 100_000


def grad_fn(cell, H, B, F, remat):
  params = cell.init(jax.random.key(0), F)
  carry = cell.initial_carry(params, (B,))
  loss = lambda p, x: jnp.sum(jaxrnn.unroll(cell, p, carry, x, remat=remat)[1] ** 2)
  return jax.jit(jax.value_and_grad(loss)), params


def temp_mib(H, B, F, remat):
  fn, params = grad_fn(jaxrnn.lstm(H), H, B, F, remat)
  xs = jax.ShapeDtypeStruct((B, T, F), jnp.float32)
  stats = fn.lower(params, xs).compile().memory_analysis()
  return stats.temp_size_in_bytes / 2**20


if __name__ == "__main__":
  print(f"backend={jax.default_backend()}, T={T}, LSTM, float32")
  print("| H | B | F | remat=False temp MiB | remat=True temp MiB | inputs MiB |")
  print("|---|---|---|---|---|---|")
  for H, B, F in ((4, 1, 3), (128, 16, 32)):
    a, b = temp_mib(H, B, F, False), temp_mib(H, B, F, True)
    print(f"| {H} | {B} | {F} | {a:.1f} | {b:.1f} | {B * T * F * 4 / 2**20:.1f} |")
  fn, params = grad_fn(jaxrnn.lstm(4), 4, 1, 3, True)
  xs = 50.0 * jax.random.normal(jax.random.key(1), (1, T, 3))
  jax.block_until_ready(fn(params, xs))  # compile
  t0 = time.perf_counter()
  loss, grads = jax.block_until_ready(fn(params, xs))
  finite = all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  print(f"H=4, B=1, remat=True: one value_and_grad step {time.perf_counter() - t0:.2f} s, gradients finite: "
        f"{finite}, peak RSS of the process {rss:.0f} MiB")
