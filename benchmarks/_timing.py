"""The timing helper the benchmarks share: median wall-clock milliseconds of a jitted call."""

from __future__ import annotations

import functools
import random
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


def interleaved_times(calls, repeats, clock=time.perf_counter, seed=0):
  """``{name: [seconds, ...]}`` of ``repeats`` calls of every ``calls[name]()`` (a function of no arguments), after
  one warm-up call each, interleaved (one of each per round, so that a loaded or drifting machine slows them alike)
  in a fresh order each round (``random.Random(seed)``): in a fixed order each call always follows the same one, and
  a call right after an XLA program can run slower while XLA's worker threads go on spinning (``rnn_layers.py``'s
  docstring has the numbers). Every call is waited for (``jax.block_until_ready``, which passes NumPy results
  through). ``clock``: wall clock, or ``time.process_time`` for CPU time."""
  for call in calls.values():
    jax.block_until_ready(call())
  times = {name: [] for name in calls}
  order = random.Random(seed)
  for _ in range(repeats):
    names = list(calls)
    order.shuffle(names)
    for name in names:
      start = clock()
      jax.block_until_ready(calls[name]())
      times[name].append(clock() - start)
  return times


def interleaved_ms(fns, args, repeats, stat=statistics.median, clock=time.perf_counter, seed=0):
  """``{name: ms}`` of every ``fns[name](*args)``: ``stat`` (the median, or ``min`` on a loaded machine, the least
  disturbed call) of :func:`interleaved_times`."""
  times = interleaved_times({name: functools.partial(fn, *args) for name, fn in fns.items()}, repeats, clock, seed)
  return {name: 1e3 * stat(t) for name, t in times.items()}
