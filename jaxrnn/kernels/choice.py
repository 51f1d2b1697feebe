"""Which kernel runs a sequence path: :attr:`jaxrnn.RunOptions.kernel` checked, and each backend's default.

A kernel asked for by name (``kernel="cudnn"``) runs, or raises a ``ValueError`` that says why not (the path has
no such kernel, or the call does not fit it). ``kernel=None`` takes the backend's default from :data:`DEFAULTS`,
and only where the call fits it; otherwise the JAX path (``"xla"``) runs.

Defaults are set by measurement (``benchmarks/gpu.py`` on a GPU, ``benchmarks/`` on CPU), never where a kernel
loses. No GPU measurement has been made yet, so the table is empty: the JAX path everywhere.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

import jax

from jaxrnn.types import KERNELS

DEFAULTS: Mapping[str, Mapping[str, str]] = {}
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
  why = misfit(kernel)
  if why is not None:
    raise ValueError(f"kernel={kernel!r} does not fit this call of {name}: {why}")
  return kernel
