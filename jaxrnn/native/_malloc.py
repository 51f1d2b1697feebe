"""glibc's malloc, set by the native path to keep large freed blocks for reuse instead of returning them at once.

Why: XLA:CPU allocates every run's buffers afresh (the results, and one block for all of a program's temporaries),
and glibc's malloc returns a freed block above its mmap threshold (which it raises by itself only up to 32 MiB) to
the kernel, and trims the top of its heap above twice that threshold. The next run then writes to fresh pages,
which the kernel faults in and zeroes 4 KiB at a time. The native loops write most of those pages (the
backward's residuals: the carries and gates of every step, ``[T, B, 4 H]``), and a page fault in the middle of a
step stalls the thread that shares the step with it. Measured at LSTM W1 training (B=32 T=128 F=128 H=256,
``jax.grad`` of the default path, one thread): 11,900 page faults per call with glibc's defaults, 680 with these
settings; wall clock in ``benchmarks/rnn_layers.py`` (2 threads, medians of 7, same machine, one run each): the
default path 103 -> 71 ms, torch 104 -> 87 ms, flax 156 -> 135 ms (every implementation in the process runs with
the same malloc).

So when the native path loads, it sets ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` to :data:`KEEP_BYTES`: blocks
up to that size come from the heap and are reused, and up to that much free memory stays at the heap's top. This is
process-wide: it holds for every allocation from then on (XLA, numpy, torch), and the process may keep up to
:data:`KEEP_BYTES` of freed memory (as tcmalloc and jemalloc keep theirs). It is left alone when
``JAXRNN_NATIVE_MALLOC=0``, when the C library is not glibc, and when the environment already sets glibc's malloc
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``, ``MALLOC_MMAP_MAX_`` or
``glibc.malloc`` tunables in ``GLIBC_TUNABLES``). :func:`jaxrnn.native.status_line` says which.
"""

from __future__ import annotations

import ctypes
import os
from typing import Mapping, Optional

# Blocks up to this size are reused from the heap; up to this much free memory stays at its top. On threads other
# than the main one glibc allocates from per-thread heaps of at most 64 MiB, and maps larger blocks afresh whatever
# the threshold: XLA's temporaries of W4 training (B=128 T=256 F=H=512, about 1 GiB) faulted in 260,000-280,000
# pages a call with this value, with none and with mallopt's largest (just under 2 GiB) alike, so a larger value
# would only let the process keep more.
KEEP_BYTES = 512 << 20
# mallopt's parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


def refusal(environ: Mapping[str, str], libc: Optional[ctypes.CDLL]) -> Optional[str]:
  """Why malloc is left as it is (``None``: set it), given the environment and the C library (``None``: none
  could be loaded)."""
  if environ.get("JAXRNN_NATIVE_MALLOC", "1") == "0":
    return "JAXRNN_NATIVE_MALLOC=0"
  if libc is None or not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
    return "the C library is not glibc"
  user = [name for name in _USER_SETTINGS if name in environ]
  if "glibc.malloc" in environ.get("GLIBC_TUNABLES", ""):
    user.append("GLIBC_TUNABLES")
  if user:
    return f"the environment sets it: {', '.join(user)}"
  return None


def keep_freed_blocks(environ: Mapping[str, str] = os.environ) -> str:
  """Sets glibc's malloc as the module docstring says (unless :func:`refusal` gives a reason); returns what it did,
  for :func:`jaxrnn.native.status_line`."""
  try:
    libc: Optional[ctypes.CDLL] = ctypes.CDLL(None)
  except (OSError, TypeError):  # TypeError: no C library by that name (Windows)
    libc = None
  why = refusal(environ, libc)
  if why is None:
    assert libc is not None
    if libc.mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES) != 1 or libc.mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES) != 1:
      return "malloc: as it was (glibc refused mallopt)"
    return (f"malloc: keeps freed blocks up to {KEEP_BYTES >> 20} MiB for reuse "
            "(JAXRNN_NATIVE_MALLOC=0 leaves it)")
  return f"malloc: as it was ({why})"
