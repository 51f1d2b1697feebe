"""Which kernel runs a sequence path: :attr:`jaxrnn.RunOptions.kernel` checked, and each backend's default.

A kernel asked for by name (``kernel="cudnn"``) runs, or raises a ``ValueError`` that says why not (the path has
no such kernel, or the call does not fit it). ``kernel=None`` takes the backend's default from :data:`DEFAULTS`,
and only where the call fits it; otherwise the JAX path (``"xla"``) runs.

Defaults are set by measurement (``benchmarks/gpu.py`` on a GPU, ``benchmarks/`` on CPU), never where a kernel
loses. On an H200 (2026-11-30, ``docs/performance.md``) both kernels lost to the JAX path in every row they ran:
cuDNN (``jax.experimental.rnn``) took 1.4x (LSTM W1 training), 1.15x (W4) and 2.9x (W3 inference, one example)
the time of the fused XLA loop, before that loop's 8 steps per iteration made it faster still; the Pallas linear
recurrence took 1.1x (W1) to 3.6x (``T`` = 16,384) the associative scan's time. So the JAX path stays the default
on every backend; the table says so for GPU explicitly.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

import jax

from jaxrnn.types import KERNELS

DEFAULTS: Mapping[str, Mapping[str, str]] = {"gpu": {"lstm": "xla", "linear_recurrence": "xla"}}
"""``{backend: {path: kernel}}`` (backends as ``jax.default_backend()`` names them; paths ``"lstm"`` and
``"linear_recurrence"``): the kernel that ``kernel=None`` runs where the call fits it. A missing entry is
``"xla"``."""


class Route(NamedTuple):
  """A kernel of a sequence path besides the JAX one.

  Fields:
    misfit: ``misfit(params, carry, xs, options) -> None`` if the kernel computes this call, else why not.
    run: ``run(params, carry, xs, mask) -> (carry, hs)`` (:class:`jaxrnn.types.SequenceFn` without options).
  """

  misfit: Callable[[Any, Any, Any, Any], Optional[str]]
  run: Callable[[Any, Any, Any, Any], Any]


def check(kernel: Optional[str]) -> Optional[str]:
  """``kernel`` if it is ``None`` or one of :data:`jaxrnn.types.KERNELS`, else a ``ValueError``."""
  if kernel is not None and kernel not in KERNELS:
    raise ValueError(f"kernel must be None or one of {KERNELS}, got {kernel!r}")
  return kernel


def default(path: str, backend: Optional[str] = None) -> str:
  """The kernel that ``kernel=None`` asks for on ``path`` (``backend``: ``jax.default_backend()``)."""
  return DEFAULTS.get(backend or jax.default_backend(), {}).get(path, "xla")


def resolve(kernel: Optional[str], path: str, name: str, available: Sequence[str],
            misfit: Callable[[str], Optional[str]]) -> str:
  """The kernel a sequence path runs.

  Args:
    kernel: the run option (``None``: the backend's default, where it fits).
    path: the path's entry in :data:`DEFAULTS` (``"lstm"``, ``"linear_recurrence"``).
    name: the cell's name, for messages.
    available: the kernels this path has (``"xla"`` among them).
    misfit: ``misfit(kernel) -> None`` if this call fits ``kernel``, else the reason it does not.

  Raises:
    ValueError: ``kernel`` is not one of the path's, or the call does not fit it.
  """
  if kernel is None:
    chosen = default(path)
    if chosen == "xla" or chosen not in available or misfit(chosen) is not None:
      return "xla"
    return chosen
  if kernel not in available:
    raise ValueError(f"kernel={kernel!r} is not available for {name}: its sequence path has {tuple(available)}")
  if kernel == "xla":  # the JAX path runs every call
    return kernel
  why = misfit(kernel)
  if why is not None:
    raise ValueError(f"kernel={kernel!r} does not fit this call of {name}: {why}")
  return kernel
