"""Compiled temp memory of jax.grad through jaxrnn.unroll with and without remat (memory-bounded backprop).

Run: PYTHONPATH=. python benchmarks/remat_memory.py  (prints a Markdown table; CPU or whatever backend JAX picks).
"""

import jax
import jax.numpy as jnp

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


if __name__ == "__main__":
  print(f"LSTM H={H}, B={B}, F={F}, float32, backend={jax.default_backend()}")
  print("| T | remat=False temp MiB | remat=True temp MiB | ratio |")
  print("|---|---|---|---|")
  for T in (1000, 4000):
    a, b = temp_bytes(T, False), temp_bytes(T, True)
    print(f"| {T} | {a / 2**20:.1f} | {b / 2**20:.1f} | {a / b:.1f}x |")
