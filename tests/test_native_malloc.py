"""glibc's malloc as the native path sets it (jaxrnn/native/_malloc.py): when it is set and when it is left alone,
and that a large freed block is then reused without the kernel faulting its pages in again."""

from __future__ import annotations

import ctypes
import resource

import jax
import jax.numpy as jnp
import pytest

import jaxrnn
from jaxrnn.cells import _native_scan
from jaxrnn.native import _malloc

GLIBC = ctypes.CDLL(None)


class _NotGlibc:
  """A C library without glibc's functions (musl, macOS)."""


@pytest.mark.parametrize("environ, libc, why", [
    ({}, GLIBC, None),
    ({"JAXRNN_NATIVE_MALLOC": "1"}, GLIBC, None),
    ({"JAXRNN_NATIVE_MALLOC": "0"}, GLIBC, "JAXRNN_NATIVE_MALLOC=0"),
    ({}, None, "the C library is not glibc"),
    ({}, _NotGlibc(), "the C library is not glibc"),
    ({"MALLOC_TRIM_THRESHOLD_": "0"}, GLIBC, "the environment sets it: MALLOC_TRIM_THRESHOLD_"),
    ({"MALLOC_MMAP_THRESHOLD_": "1", "MALLOC_TOP_PAD_": "1"}, GLIBC,
     "the environment sets it: MALLOC_MMAP_THRESHOLD_, MALLOC_TOP_PAD_"),
    ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4096"}, GLIBC, "the environment sets it: GLIBC_TUNABLES"),
    ({"GLIBC_TUNABLES": "glibc.rtld.nns=2"}, GLIBC, None),
])
def test_refusal(environ, libc, why):
  assert _malloc.refusal(environ, libc) == why


def test_left_alone_says_why():
  assert _malloc.keep_freed_blocks({"JAXRNN_NATIVE_MALLOC": "0"}) == "malloc: as it was (JAXRNN_NATIVE_MALLOC=0)"


@pytest.mark.skipif(not jaxrnn.native.available() or "keeps freed blocks" not in jaxrnn.native.reason(),
                    reason=f"malloc not set by the native path: {jaxrnn.native.status_line('cpu')}")
def test_a_freed_block_is_reused_without_page_faults():
  # 64 MiB: above the 32 MiB up to which glibc raises its mmap threshold by itself, so with its defaults every
  # allocation of it is a fresh mapping (16,384 page faults when written); set, the second one reuses the first.
  size = 64 << 20
  GLIBC.malloc.restype = ctypes.c_void_p
  GLIBC.malloc.argtypes = [ctypes.c_size_t]
  GLIBC.free.argtypes = [ctypes.c_void_p]

  def faults_of_one_block():
    block = GLIBC.malloc(size)
    assert block
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ctypes.memset(block, 1, size)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    GLIBC.free(block)
    return faults

  faults_of_one_block()
  assert faults_of_one_block() < (size >> 12) // 10


def test_other_backends_never_load_the_library(monkeypatch):
  # On a GPU or TPU the native path is never asked for, so neither its library nor this malloc setting is loaded.
  def loads():
    raise AssertionError("the native library was asked for")

  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  monkeypatch.setattr(jaxrnn.native, "available", loads)
  cell = jaxrnn.lstm(4)
  params = cell.init(jax.random.key(0), 3)
  xs = jnp.zeros((2, 5, 3), jnp.float32)
  why = _native_scan.fits("lstm", params, cell.initial_carry(params, (2,)), xs, jaxrnn.RunOptions())
  assert why == "the backend is gpu, not cpu"
