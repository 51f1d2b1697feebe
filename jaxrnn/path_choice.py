r"""Which path ``unroll(..., mode="auto")`` takes: a cell's sequence path or the scan of ``step``, by measurement.

A parallel (associative-scan) path is not always the fast one: on CPU the scan of ``step`` wins the forward pass
of every parallel cell measured (``benchmarks/parallel_vs_sequential.py``), while the parallel path's lean
backward can win a forward + backward pass. A :class:`jaxrnn.SequencePath` declares where it pays with a rule
(:attr:`jaxrnn.SequencePath.auto`, a :class:`jaxrnn.types.AutoRuleFn`): by backend, ``T`` and size, separately
for undifferentiated runs (``forward``) and reverse-mode differentiated ones (``gradient``). When the two differ
:func:`split` runs one function whose value comes from one path and whose derivative comes from the other (same
function, so the same values and gradients up to rounding).

The rules are a table of measured crossover points (:class:`Crossover`, :func:`crossover_rule`), cheap to
evaluate at trace time; a backend without an entry takes the path everywhere (no measurement, today's behaviour).
``mode="step"`` and ``mode="sequence"`` are never changed by a rule.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, NamedTuple, Optional, Tuple

import jax

from jaxrnn.types import AutoRuleFn, PathChoice


class Crossover(NamedTuple):
  """Where a sequence path beats the scan of ``step`` on one backend: from a least ``T``, up to a largest size.

  On CPU the associative scans win while their ``[T, carry]`` arrays stay in cache and lose beyond (measured:
  ``benchmarks/parallel_vs_sequential.py``), so a window in ``T`` alone would not carry over to other batch and
  state sizes; the upper bounds are in elements, ``T`` times the carry's elements (batch included).

  Fields:
    forward: the least ``T`` from which undifferentiated runs take the path (``None``: never; ``0``: always).
    gradient: the least ``T`` from which differentiated runs take the path and its derivative (``None``: never).
    forward_max: the largest ``T * width`` (``width``: the carry's elements, batch included) at which
      undifferentiated runs take the path (``None``: no bound).
    gradient_max: the same for differentiated runs.
  """

  forward: Optional[int] = 0
  gradient: Optional[int] = 0
  forward_max: Optional[int] = None
  gradient_max: Optional[int] = None


def crossover_rule(table: Mapping[str, Crossover]) -> AutoRuleFn:
  """The :class:`jaxrnn.types.AutoRuleFn` of a ``{backend: Crossover}`` table (missing backends: always the path;
  a symbolic ``T``, as in :mod:`jaxrnn.export`, takes the path only where its crossover is ``0``).

  >>> rule = crossover_rule({"cpu": Crossover(forward=None, gradient=2048)})
  >>> rule("cpu", 4096, 512), rule("cpu", 1024, 512)
  (PathChoice(forward=False, gradient=True), PathChoice(forward=False, gradient=False))
  >>> rule("gpu", 16, 512)
  PathChoice(forward=True, gradient=True)
  >>> windowed = crossover_rule({"cpu": Crossover(forward=None, gradient=0, gradient_max=2**20)})
  >>> windowed("cpu", 2048, 512), windowed("cpu", 4096, 512)
  (PathChoice(forward=False, gradient=True), PathChoice(forward=False, gradient=False))
  """
  entries: Tuple[Tuple[str, Crossover], ...] = tuple(sorted(table.items()))
  for backend, c in entries:
    if not isinstance(c, Crossover):
      raise TypeError(f"crossover table entries must be jaxrnn.path_choice.Crossover, got {c!r} for {backend!r}")

  def rule(backend: str, num_steps: int, width: int) -> PathChoice:
    c = dict(entries).get(backend)
    if c is None:
      return PathChoice(True, True)
    # A symbolic T or width (jaxrnn.export) is unknown: only "always" (least 0, no bound) takes the path.
    known = isinstance(num_steps, int) and isinstance(width, int)

    def takes(least, most):
      if least is None:
        return False
      if not known:
        return least == 0 and most is None
      return num_steps >= least and (most is None or num_steps * width <= most)

    return PathChoice(takes(c.forward, c.forward_max), takes(c.gradient, c.gradient_max))

  return rule


LINEAR_RECURRENCE_TABLE: Mapping[str, Crossover] = {"cpu": Crossover(forward=None, gradient=None)}
"""The default crossovers of an associative-scan path that declares none of its own (the one-chunk ``mlstm``;
``min_gru``, ``min_lstm``, ``lru``, ``rg_lru`` and the chunkwise ``mlstm`` declare their own ``AUTO`` rules, set from
``benchmarks/parallel_vs_sequential.py``, docs, "Parallel-in-time cells"). CPU: the scan of ``step`` (the one-chunk
mLSTM's ``O(T²)`` form is 0.05x / 0.22x of it at T = 1024); no GPU/TPU measurement yet (the path everywhere)."""

LINEAR_RECURRENCE: AutoRuleFn = crossover_rule(LINEAR_RECURRENCE_TABLE)
"""The default rule of the parallel paths built by ``jaxrnn.cells._parts.parallel_path``."""


def choose(rule: Optional[AutoRuleFn], num_steps: int, carry: Any, backend: Optional[str] = None) -> PathChoice:
  """The :class:`jaxrnn.types.PathChoice` of a path with ``rule`` for a run of ``num_steps`` from ``carry``."""
  if rule is None:
    return PathChoice(True, True)
  width = sum(math.prod(a.shape) for a in jax.tree.leaves(carry))  # symbolic if the shapes are
  choice = rule(backend or jax.default_backend(), num_steps, width)
  if not isinstance(choice, PathChoice):
    raise TypeError(f"a SequencePath's auto rule must return a jaxrnn.PathChoice, got {choice!r}")
  return choice


def split(primal: Callable, differentiated: Callable) -> Callable:
  """``f(params, carry, xs, mask)`` computed by ``primal`` when not differentiated and by ``differentiated``
  (with its own derivative) when differentiated, in any mode and to any order.

  Both must compute the same function ``(params, carry, xs, mask) -> (carry, hs)``. It is a ``jax.custom_jvp``
  function whose rule is ``jax.jvp`` of ``differentiated``: ``jax.grad`` (JAX transposes that rule), ``jax.jvp``,
  ``jax.hessian``, ``vmap`` all work. (It was a ``jax.custom_vjp``, which has no forward mode: ``jax.jvp`` of a
  ``min_gru`` in ``mode="auto"`` raised.)
  """

  @jax.custom_jvp
  def f(params, carry, xs, mask):
    return primal(params, carry, xs, mask)

  def f_jvp(primals, tangents):
    params, carry, xs, mask = primals
    d_params, d_carry, d_xs, _ = tangents
    return jax.jvp(lambda p, c, x: differentiated(p, c, x, mask), (params, carry, xs), (d_params, d_carry, d_xs))

  f.defjvp(f_jvp)
  return f
