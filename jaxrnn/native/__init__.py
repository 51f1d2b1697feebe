"""The native CPU sequence path: the time loop of ``lstm``, ``gru`` (both reset forms), ``simple_rnn`` and ``lstmp``
in C++.

:func:`jaxrnn.unroll` uses it in ``mode="auto"`` on CPU when the call fits (see
:func:`jaxrnn.cells._native_scan.fits`) and the library is built (``python -m jaxrnn.native.build``, which the
Makefile's install step runs); otherwise the pure-JAX path runs, with the same values. ``RunOptions(native=False)``
turns it off for a run, ``native=True`` requires it.

Threads: the loop runs on the calling thread and on XLA's own intra-op thread pool (as many threads as the cores
the process may use, unless ``XLA_FLAGS`` says otherwise), never on a pool of its own. The per-step products are
the library's own packed-kernel GEMM (AVX-512, AVX2 + FMA or plain C++ micro-kernels, as the build machine
allows: :func:`reason` says which), one chunk of hidden units per worker; the three large products of the
backward (the kernels' and the inputs' gradients, after each block of the loop's steps:
``jaxrnn.cells._native_scan.DZ_BLOCK_BYTES``) are calls of the BLAS that numpy ships (OpenBLAS), one
single-threaded call per worker over a share of the columns or rows.

Memory: when it loads, it sets glibc's malloc to keep freed blocks of up to 512 MiB for reuse, process-wide, so that
XLA's per-run buffers are not faulted in afresh on every call (``jaxrnn/native/_malloc.py`` says why, what it
changes and when it leaves malloc alone: ``JAXRNN_NATIVE_MALLOC=0``); :func:`status_line` says which.

>>> import jaxrnn
>>> isinstance(jaxrnn.native.available(), bool) and isinstance(jaxrnn.native.reason(), str)
True
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
from typing import NamedTuple, Optional

from jaxrnn.native import _malloc, _paths

# The sgemm symbols numpy's bundled OpenBLAS may export: (name, 64-bit integers).
_SGEMM = (("scipy_cblas_sgemm64_", True), ("cblas_sgemm64_", True), ("scipy_cblas_sgemm", False),
          ("cblas_sgemm", False))
_SET_THREADS = ("openblas_set_num_threads_local", "scipy_openblas_set_num_threads_local64_")

FORWARD = "jaxrnn_rnn_forward"
BACKWARD = "jaxrnn_rnn_backward"


class _Status(NamedTuple):
  ok: bool
  reason: str


def _numpy_blas() -> ctypes.CDLL:
  """numpy's bundled BLAS library (already loaded by ``import numpy``)."""
  import numpy
  roots = [os.path.dirname(numpy.__file__), os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)),
                                                         "numpy.libs")]
  for root in roots:
    for path in sorted(glob.glob(os.path.join(root, "*openblas*.so*"))):
      return ctypes.CDLL(path)
  raise OSError(f"numpy ships no OpenBLAS library in {roots}")


@functools.lru_cache(maxsize=None)
def _load() -> _Status:
  """Loads the library, hands it numpy's sgemm and registers its FFI targets (once per process)."""
  import jax
  path = _paths.find_library()
  if path is None:
    return _Status(False, "not built: run `python -m jaxrnn.native.build` (the Makefile's install step does)")
  try:
    blas = _numpy_blas()
  except OSError as e:
    return _Status(False, f"no BLAS to call: {e}")
  sgemm = next(((getattr(blas, name), ilp64) for name, ilp64 in _SGEMM if hasattr(blas, name)), None)
  if sgemm is None:
    return _Status(False, f"numpy's BLAS {blas._name} exports no cblas_sgemm")
  set_threads = next((getattr(blas, name) for name in _SET_THREADS if hasattr(blas, name)), None)
  try:
    lib = ctypes.CDLL(str(path))
  except OSError as e:
    return _Status(False, f"cannot load {path}: {e}")
  address = lambda f: ctypes.cast(f, ctypes.c_void_p).value if f is not None else None
  lib.jaxrnn_native_set_blas.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
  lib.jaxrnn_native_set_blas(address(sgemm[0]), int(sgemm[1]), address(set_threads))
  lib.jaxrnn_native_kernels.restype = ctypes.c_char_p
  kernels = lib.jaxrnn_native_kernels().decode()
  jax.ffi.register_ffi_target(FORWARD, jax.ffi.pycapsule(lib.JaxrnnRnnForward), platform="cpu")
  jax.ffi.register_ffi_target(BACKWARD, jax.ffi.pycapsule(lib.JaxrnnRnnBackward), platform="cpu")
  malloc = _malloc.keep_freed_blocks()
  return _Status(True, f"built: {path}; step kernels: {kernels}; BLAS: {os.path.basename(blas._name)} "
                       f"({sgemm[0].__name__}); {malloc}")


def available() -> bool:
  """Whether the native path is built and loaded (:func:`reason` says why not)."""
  return _load().ok


def reason() -> str:
  """Which library runs and with which BLAS, or why the native path is not available."""
  return _load().reason


def status_line(backend: Optional[str] = None) -> str:
  """One line for logs and benchmark headers: ``native CPU path: on (...)`` or ``off (why)``."""
  import jax
  backend = backend or jax.default_backend()
  if backend != "cpu":
    return f"native CPU path: off (backend is {backend})"
  return f"native CPU path: {'on' if available() else 'off'} ({reason()})"
