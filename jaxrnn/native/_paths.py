"""Where the native library's source and built file live (shared by the loader and ``build``)."""

from __future__ import annotations

import hashlib
import os
import pathlib
import platform
from typing import List, Optional

SOURCE = pathlib.Path(__file__).with_name("rnn.cc")
# -ffast-math lets GCC vectorize the gate loops (with rnn.cc's own exp and tanh); it is given to the compile step
# only, so that the link step does not add crtfastmath.o (which would set flush-to-zero for the whole process).
# -fno-finite-math-only: exp overflows to inf in the gates of large pre-activations (1 / (1 + inf) = 0, tanh -> 1)
# exactly as in the pure-JAX path; with finite-math-only they became NaN.
# -mprefer-vector-width=512: GCC vectorizes loops with 256-bit vectors on AVX-512 CPUs unless told otherwise; the gate
# loops (exp, tanh, divisions) run on 512-bit ones with it (the step products use their own 512-bit kernels either
# way). LSTM W2 inference (B=64 T=512 F=H=128, 2 threads, three alternating pairs of processes, medians of 30 calls):
# 39.1 / 39.9 / 39.6 ms without, 36.7 / 36.9 / 36.4 with; W1 training and B=1 unchanged. A preference only: CPUs
# without AVX-512 keep their widest vectors.
COMPILE_FLAGS = [
    "-O3", "-march=native", "-mprefer-vector-width=512", "-ffast-math", "-fno-finite-math-only", "-fPIC", "-std=c++17",
    "-w"
]


def _jaxlib_version() -> str:
  import jaxlib.version
  return jaxlib.version.__version__


def cpu_features() -> str:
  """What ``-march=native`` compiles for: the CPU's instruction-set features (Linux: ``/proc/cpuinfo``'s ``flags``
  or ``Features``), else the machine and processor names. A library built on one CPU may use instructions another
  lacks (AVX-512 on a machine with AVX2 only dies of SIGILL), so a cache shared by several machines keeps one build
  per CPU kind."""
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      key, _, value = line.partition(":")
      if key.strip() in ("flags", "Features"):
        return " ".join(sorted(value.split()))
  except OSError:
    pass
  return f"{platform.machine()} {platform.processor()}"


def library_name() -> str:
  """``jaxrnn_native-<hash>.so``: the hash of the source, the flags, the CPU's features and the jaxlib version."""
  digest = hashlib.sha256()
  digest.update(SOURCE.read_bytes())
  digest.update(" ".join(COMPILE_FLAGS).encode())
  digest.update(cpu_features().encode())
  digest.update(_jaxlib_version().encode())
  return f"jaxrnn_native-{digest.hexdigest()[:16]}.so"


def candidate_dirs() -> List[pathlib.Path]:
  """Where a built library is looked for, in order: beside this file, then the user cache."""
  cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "jaxrnn"
  return [pathlib.Path(__file__).parent / "_build", cache]


def find_library() -> Optional[pathlib.Path]:
  name = library_name()
  for d in candidate_dirs():
    if (d / name).is_file():
      return d / name
  return None
