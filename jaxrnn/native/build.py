"""Builds the native CPU sequence path (``rnn.cc``) into a shared library: ``python -m jaxrnn.native.build``.

The Makefile's install step runs it (a few seconds of ``g++``; nothing is downloaded): the XLA FFI headers come with
jaxlib (``jax.ffi.include_dir()``) and the matrix products use the BLAS that numpy ships, found at load time. Without
a C++ compiler it prints why and exits 0 unless ``--strict``: jaxrnn then runs the pure-JAX path
(``jaxrnn.native.available()`` is ``False`` and ``jaxrnn.native.reason()`` says why).

The library's file name holds a hash of the source, the flags, the CPU's instruction-set features (it is built
with ``-march=native``) and the jaxlib version, so a changed source or jaxlib, or another kind of CPU sharing the
cache, is never served by an old build; it goes beside this file, or to ``$XDG_CACHE_HOME/jaxrnn`` (default
``~/.cache/jaxrnn``) where the package directory is read-only.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import List, Optional, Sequence

from jaxrnn.native._paths import COMPILE_FLAGS, SOURCE, candidate_dirs, find_library, library_name


def compiler() -> Optional[str]:
  return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def compile_library(out: pathlib.Path, flags: Sequence[str] = tuple(COMPILE_FLAGS), verbose: bool = False) -> None:
  """Compiles ``rnn.cc`` with ``flags`` into the shared library ``out`` (the directory must exist).

  Raises:
    RuntimeError: no C++ compiler, or the compiler failed (its output is in the message).
  """
  cxx = compiler()
  if cxx is None:
    raise RuntimeError("no C++ compiler found (set CXX, or install g++)")
  import jax
  obj = out.with_suffix(".o")
  commands = [[cxx, *flags, f"-I{jax.ffi.include_dir()}", "-c", str(SOURCE), "-o", str(obj)],
              [cxx, "-shared", str(obj), "-o", str(out)]]
  for cmd in commands:
    if verbose:
      print(" ".join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
      raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-4000:]}")


def build(verbose: bool = True) -> pathlib.Path:
  """Compiles ``rnn.cc`` (if not already built) and returns the library's path.

  Raises:
    RuntimeError: no C++ compiler, or the compiler failed (its output is in the message).
  """
  found = find_library()
  if found is not None:
    return found
  if compiler() is None:
    raise RuntimeError("no C++ compiler found (set CXX, or install g++)")
  errors = []
  for target_dir in candidate_dirs():
    try:
      target_dir.mkdir(parents=True, exist_ok=True)
      with tempfile.TemporaryDirectory(dir=target_dir) as tmp:
        lib = pathlib.Path(tmp) / library_name()
        compile_library(lib, COMPILE_FLAGS, verbose)
        final = target_dir / library_name()
        os.replace(lib, final)  # atomic: a concurrent import sees the whole file or none
      for old in target_dir.glob("jaxrnn_native-*.so"):  # builds of another source or jaxlib
        if old != final:
          old.unlink(missing_ok=True)
      return final
    except OSError as e:  # read-only package directory: try the cache
      errors.append(f"{target_dir}: {e}")
  raise RuntimeError("cannot write the library: " + "; ".join(errors))


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--strict", action="store_true", help="exit 1 if the library cannot be built")
  args = parser.parse_args(argv)
  try:
    path = build()
  except RuntimeError as e:
    print(f"jaxrnn: native CPU path not built ({e}); jaxrnn runs on the pure-JAX path", file=sys.stderr)
    return 1 if args.strict else 0
  print(f"jaxrnn: native CPU path built: {path}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
