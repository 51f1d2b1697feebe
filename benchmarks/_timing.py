"""The timing helper the benchmarks share: median wall-clock milliseconds of a jitted call."""

from __future__ import annotations

import statistics
import time

import jax


def median_ms(fn, args, repeats, clock=time.perf_counter):
  """Median milliseconds of ``fn(*args)`` over ``repeats`` calls, after one call that compiles and warms up; every
  call is waited for (``jax.block_until_ready``). ``clock``: wall clock, or ``time.process_time`` for CPU time."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = clock()
    jax.block_until_ready(fn(*args))
    times.append(clock() - start)
  return 1e3 * statistics.median(times)


def interleaved_ms(fns, args, repeats, stat=statistics.median):
  """``{name: ms}`` of every ``fns[name](*args)`` (``stat`` of the repeats: the median, or ``min`` on a loaded
  machine, the least disturbed call), the calls interleaved (one of each per round, after one warm-up call each),
  so that a loaded or drifting machine slows them alike."""
  for fn in fns.values():
    jax.block_until_ready(fn(*args))
  times = {name: [] for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      start = time.perf_counter()
      jax.block_until_ready(fn(*args))
      times[name].append(time.perf_counter() - start)
  return {name: 1e3 * stat(t) for name, t in times.items()}
