r"""Memory-bounded backprop through the scan of ``step``: nested, checkpointed scans (``unroll(..., remat=...)``).

A scan of ``T`` steps is split into ``d`` nested levels of sizes ``k_1 .. k_d`` (outer to inner, ``k_1 k_2 ... k_d
>= T``; the extra steps are masked and leave the carry unchanged). Level ``i`` is a ``lax.scan`` over ``k_i``
iterations whose body, level ``i + 1``, is wrapped in ``jax.checkpoint``; the innermost level scans ``k_d`` steps.
The backward pass then keeps, at any moment, the ``k_1`` carries at the outer boundaries, the ``k_2`` carries of
the one outer block being differentiated, ..., and the residuals of ``k_d`` steps: ``k_1 + ... + k_d`` carry-sized
checkpoints (the innermost steps count one each: they hold the step's residuals, a few carries' worth for gated
cells), instead of the residuals of all ``T`` steps. The price is ``d - 1`` extra forward passes: every step runs
``d`` times in a forward + backward pass (Griewank & Walther's binomial checkpointing with one level per
recomputation; Chen et al. 2016's ``sqrt(T)`` scheme is ``d = 2``).

The run option :attr:`jaxrnn.RunOptions.remat` selects the levels (:func:`plan`):

- ``True``: ``d = 2`` with inner blocks of ``ceil(sqrt(T))`` steps (about ``2 sqrt(T)`` checkpoints, one extra
  forward pass); an ``int`` ``k`` sets the inner block size (``ceil(T / k) + k`` checkpoints);
- :class:`jaxrnn.RematBudget` ``(carries=n)``: at most ``n`` checkpoints, with the fewest levels that fit
  (``n >= T``: one level, no recomputation; ``n >= 2 ceil(sqrt(T))``: two; ...; down to levels of 2 or 3 steps,
  about ``3 log_3 T`` checkpoints and ``log_3 T`` extra forward passes); the sizes balanced, then each shrunk
  (innermost first) while their product still covers ``T``.

Values and gradients equal those of the plain scan (the masked padding steps are exact identities); the inputs,
the outputs and their cotangents stay ``O(T)`` (they are not carries).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.types import Array, RematBudget


def check(remat: Any) -> Any:
  """Validates a ``remat`` run option: ``None``/``False`` (off, returned as ``None``), ``True``, a positive block
  size, or a :class:`jaxrnn.RematBudget` with a positive ``carries``."""
  if remat is False or remat is None:
    return None
  if remat is True:
    return True
  if isinstance(remat, RematBudget):
    return RematBudget(_checks.positive_int("RematBudget.carries", remat.carries))
  if isinstance(remat, tuple):
    raise TypeError(f"remat must be a bool, a positive int or a jaxrnn.RematBudget, got the tuple {remat!r}")
  return _checks.positive_int("remat", remat)


def _ceil_root(n: int, d: int) -> int:
  """The least ``k >= 1`` with ``k ** d >= n``."""
  k = max(1, math.ceil(n ** (1.0 / d)))
  while k > 1 and (k - 1) ** d >= n:
    k -= 1
  while k ** d < n:
    k += 1
  return k


def _levels_for(num_steps: int, depth: int) -> Tuple[int, ...]:
  """``depth`` level sizes with product ``>= num_steps``, balanced, then each shrunk (innermost first: the innermost
  level keeps step residuals, larger than carries) while the product still covers ``num_steps``."""
  sizes = [_ceil_root(num_steps, depth)] * depth
  for i in reversed(range(depth)):
    while sizes[i] > 1 and math.prod(sizes) // sizes[i] * (sizes[i] - 1) >= num_steps:
      sizes[i] -= 1
  return tuple(sizes)


def plan(num_steps: int, remat: Any) -> Tuple[int, ...]:
  """The level sizes ``(k_1, ..., k_d)`` (outer to inner) of a checked ``remat`` option for ``num_steps`` steps.

  ``len(plan) - 1`` is the number of extra forward passes, ``sum(plan)`` the checkpoints the backward pass keeps,
  ``prod(plan) - num_steps`` the padding steps.

  >>> plan(1000, True), plan(1000, 10), plan(1000, RematBudget(1000)), plan(1000, RematBudget(40))
  ((32, 32), (100, 10), (1000,), (10, 10, 10))

  Raises:
    ValueError: a :class:`jaxrnn.RematBudget` below the fewest checkpoints any nesting of ``num_steps`` needs.
  """
  remat = check(remat)
  n = max(num_steps, 1)
  if remat is None:
    return (n,)
  if remat is True or not isinstance(remat, RematBudget):
    k = _ceil_root(n, 2) if remat is True else min(remat, n)
    return (-(-n // k), k)
  if n <= remat.carries:
    return (n,)
  best = _levels_for(n, 2)
  for depth in range(2, max(2, math.ceil(math.log2(n))) + 1):  # deeper than log2(T): levels of 1 step, no gain
    sizes = _levels_for(n, depth)
    if sum(sizes) <= remat.carries:
      return sizes
    best = sizes if sum(sizes) < sum(best) else best
  raise ValueError(f"remat=RematBudget(carries={remat.carries}) is too small for T={num_steps}: the fewest "
                   f"checkpoints any nesting needs is {sum(best)} (levels {best}); give carries >= {sum(best)}")


def nested_scan(body: Callable, carry: Any, inputs: Any, mask: Optional[Array], unroll: Any,
                levels: Tuple[int, ...], transform: Callable) -> Tuple[Any, Any]:
  """``lax.scan(body, carry, (transform(inputs), mask))`` as nested scans with checkpointed bodies (``levels``).

  Args:
    body: the scan body ``body(c, (x, m)) -> (c, out)``, which keeps ``c`` where ``m`` is False.
    carry: the initial carry.
    inputs: time-major inputs ``[T, ...]`` (a pytree).
    mask: ``None`` or ``bool[T, *B]``.
    unroll: the innermost scan's ``unroll``.
    levels: :func:`plan`'s sizes.
    transform: the time-parallel part of the step (the input projection), run on one innermost block at a time
      inside every checkpoint, so that its ``[T, *B, nH]`` output is not kept for the backward pass either.

  Returns:
    ``(final, out)`` as the plain scan, ``out`` leaves ``[T, ...]``.
  """
  num_steps = jax.tree.leaves(inputs)[0].shape[0]
  total = math.prod(levels)
  pad = total - num_steps
  if pad:
    if mask is None:  # one flag per step; expand_to broadcasts it over the batch and feature axes
      mask = jnp.arange(total) < num_steps
    else:
      mask = jnp.concatenate([mask, jnp.zeros((pad,) + mask.shape[1:], mask.dtype)])
    inputs = jax.tree.map(lambda a: jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)]), inputs)

  def innermost(c, block):
    x, m = block
    return jax.lax.scan(body, c, (transform(x), m), unroll=unroll)

  def level(i: int) -> Callable:
    if i == len(levels) - 1:
      return innermost
    inner = jax.checkpoint(level(i + 1))

    def run(c, block):
      split = jax.tree.map(lambda a: a.reshape((levels[i], -1) + a.shape[1:]), block)
      c, out = jax.lax.scan(inner, c, split)
      return c, jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), out)

    return run

  final, out = level(0)(carry, (inputs, mask))
  return final, jax.tree.map(lambda a: a[:num_steps], out)
