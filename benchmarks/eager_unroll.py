"""``jaxrnn.unroll`` called outside ``jit`` (a notebook, an eager loop): milliseconds per call after the first.

    PYTHONPATH=. python benchmarks/eager_unroll.py --repeats 5

For each cell and path, in one process: the first eager call (it compiles), the median of the later eager calls,
the same body without unroll's program cache (the module ``jaxrnn.unroll``'s ``_unroll`` called directly: how
unroll ran before the cache, ``lax.scan`` compiling its body again on every call; the unroll calls inside a
combinator's sequence path, a ``stack``'s layers, are cached even so), and the call under the user's own
``jax.jit``.
``forward`` is ``unroll``; ``grad`` is ``jax.grad`` of the sum of its outputs wrt the params. The eager outputs
are checked to equal the jitted ones first.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn
from jaxrnn.unroll import _unroll, _use_sequence  # the body without the cache (jaxrnn.unroll is the function)

CELLS = {
    "lstm": lambda: jaxrnn.lstm(32),
    "gru": lambda: jaxrnn.gru(32),
    "peephole_lstm": lambda: jaxrnn.peephole_lstm(32),
    "stack(lstm, gru)": lambda: jaxrnn.stack(jaxrnn.lstm(32), jaxrnn.gru(32)),
}
PATHS = {"default": {}, "native=False": {"options": jaxrnn.RunOptions(native=False)}, "mode='step'": {"mode": "step"}}


def uncached(cell, params, xs, kw):
  """The body of ``unroll`` without its program cache (what an eager call ran before)."""
  options = kw.get("options", jaxrnn.RunOptions())
  mode = kw.get("mode", "auto")
  use_sequence = _use_sequence(cell, mode, options, False)
  return _unroll(cell, options, mode, use_sequence, False, False, False, params, None, xs, None, None)


def ms(fn, repeats):
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(1e3 * (time.perf_counter() - start))
  return statistics.median(times)


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--size", default="4,20,8", help="B,T,F of the inputs")
  args = parser.parse_args()
  B, T, F = (int(s) for s in args.size.split(","))
  xs = jax.random.normal(jax.random.key(1), (B, T, F), jnp.float32)
  print(f"jax {jax.__version__}, {jax.default_backend()}, B={B} T={T} F={F}, {jaxrnn.native.status_line()}")
  print(f"{'cell':18s} {'path':13s} {'run':8s} {'first ms':>9s} {'eager ms':>9s} {'uncached ms':>12s} "
        f"{'jit ms':>7s}")
  for name, make in CELLS.items():
    cell = make()
    params = cell.init(jax.random.key(0), F)
    for path, kw in PATHS.items():
      forward = lambda p, cell=cell, kw=kw: jaxrnn.unroll(cell, p, None, xs, **kw)
      loss = lambda p, cell=cell, kw=kw: sum(jnp.sum(a) for a in jax.tree.leaves(jaxrnn.unroll(cell, p, None, xs,
                                                                                                **kw)))
      old_loss = lambda p, cell=cell, kw=kw: sum(jnp.sum(a) for a in jax.tree.leaves(uncached(cell, p, xs, kw)))
      runs = {"forward": (forward, lambda p, cell=cell, kw=kw: uncached(cell, p, xs, kw)),
              "grad": (jax.grad(loss), jax.grad(old_loss))}
      for run, (fn, old) in runs.items():
        start = time.perf_counter()
        eager = jax.block_until_ready(fn(params))
        first = 1e3 * (time.perf_counter() - start)
        jitted = jax.jit(fn)
        for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted(params))):
          np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        print(f"{name:18s} {path:13s} {run:8s} {first:9.1f} {ms(lambda: fn(params), args.repeats):9.2f} "
              f"{ms(lambda: old(params), args.repeats):12.1f} {ms(lambda: jitted(params), args.repeats):7.2f}",
              flush=True)


if __name__ == "__main__":
  main()
