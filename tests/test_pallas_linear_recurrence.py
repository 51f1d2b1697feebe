"""The Pallas kernel of ``h_t = a_t h_{t-1} + b_t`` against the JAX path: values and gradients.

On CPU the kernel runs in Pallas' interpret mode (small sizes); on a GPU the same tests compile it with Triton
(``benchmarks/gpu.py`` runs this module there). The sizes leave a remainder after the unrolled chunks of the time
loop and pad the feature axis to whole blocks, across more than one program.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn import parallel_scan
from jaxrnn.kernels import choice
from jaxrnn.kernels import pallas_linear_recurrence as plr

pytestmark = pytest.mark.usefixtures("quick_compiles")  # small programs, each run once


def _inputs(key, shape, dtype):
  ka, kb, kh, kp = jax.random.split(key, 4)
  a = jax.random.uniform(ka, shape, jnp.float32, 0.3, 1.0)
  b = jax.random.normal(kb, shape, jnp.float32)
  h0 = jax.random.normal(kh, shape[1:], jnp.float32)
  if dtype == jnp.complex64:
    phase = jax.random.uniform(kp, shape, jnp.float32, 0.0, 6.0)
    a = a * jnp.exp(1j * phase)
    b = b + 1j * jnp.roll(b, 1, axis=-1)
    h0 = h0 - 0.5j * h0
  return a.astype(dtype), b.astype(dtype), h0.astype(dtype)


def _loss(run):
  """A loss of ``hs`` whose cotangent differs at every step and feature (real and imaginary parts)."""
  def loss(a, b, h0):
    hs = run(a, b, h0)
    w = jnp.sin(jnp.arange(hs.size, dtype=jnp.float32).reshape(hs.shape))
    return jnp.sum(w * jnp.real(hs) + jnp.cos(w) * jnp.imag(hs) ** 2)
  return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))


def test_values_and_gradients_equal_the_associative_scan():
  """130 features (2 programs of 128, padded) and 11 steps (2 unrolled chunks of 4 and 3 more); gradients of a, b,
  h0."""
  a, b, h0 = _inputs(jax.random.key(0), (11, 2, 65), jnp.float32)
  got = _loss(lambda a, b, h0: plr.linear_recurrence(a, b, h0, chunk=4))(a, b, h0)
  want = _loss(lambda a, b, h0: parallel_scan.linear_recurrence(a, b, h0)[0])(a, b, h0)
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(g, w, rtol=2e-5, atol=1e-5)


def test_reverse_other_blocks_and_low_precision():
  """``reverse`` runs from the last step, with any block and chunk; bfloat16 inputs are computed in float32 and
  returned in bfloat16."""
  a, b, h0 = _inputs(jax.random.key(1), (7, 40), jnp.float32)
  want = jnp.flip(parallel_scan.linear_recurrence(jnp.flip(a, 0), jnp.flip(b, 0), h0)[0], 0)
  got = plr.scan(a, b, h0, reverse=True, block=16, chunk=3)  # 3 programs, the last padded; 2 chunks and 1 step
  np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)
  bf = lambda x: x.astype(jnp.bfloat16)
  hs = plr.scan(bf(a), bf(b), bf(h0))
  ref = parallel_scan.linear_recurrence(*(bf(x).astype(jnp.float32) for x in (a, b, h0)))[0]
  assert hs.dtype == jnp.bfloat16
  np.testing.assert_allclose(hs.astype(jnp.float32), ref, rtol=1e-2, atol=1e-2)


def test_cell_with_kernel_pallas_equals_the_default_path():
  """Through ``jaxrnn.unroll``: variable lengths (0 included) and reverse, values and gradients; lru's recurrence
  is complex (the other cells reach the kernel the same way: ``test_kernel_is_an_option_not_a_default``)."""
  cell = jaxrnn.lru(3, state_size=4)
  params = cell.init(jax.random.key(0), 3)
  xs = jax.random.normal(jax.random.key(1), (3, 7, 3))
  lengths = jnp.array([7, 4, 0])

  def loss(p, x, kernel):
    carry, hs = jaxrnn.unroll(cell, p, None, x, seq_lengths=lengths, reverse=True, kernel=kernel)
    return jnp.sum(jnp.sin(hs)) + sum(jnp.sum(c ** 2) for c in jax.tree.leaves(carry))

  fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)), static_argnums=2)
  got, want = fn(params, xs, "pallas"), fn(params, xs, "xla")
  for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)


def _program(fn, *args):
  return str(jax.make_jaxpr(fn)(*args))


@pytest.mark.parametrize("make", [lambda: jaxrnn.min_lstm(4), lambda: jaxrnn.rg_lru(4, resets=True),
                                  lambda: jaxrnn.lru(4)], ids=["min_lstm", "rg_lru_resets", "lru"])
def test_kernel_is_an_option_not_a_default(make):
  """The default path (``kernel=None``) runs no Pallas kernel; ``kernel="pallas"`` runs it (min_gru shares min_lstm's
  scan; lru's run is also checked for values above); in a stack whose other layer has no such kernel, it raises."""
  cell = make()
  params = cell.init(jax.random.key(0), 3)
  xs = jnp.ones((2, 5, 3))
  if cell.input_ndim == (1, 0):
    xs = (xs, jnp.zeros((2, 5), bool))
  run = lambda kernel: lambda p, x: jaxrnn.unroll(cell, p, None, x, kernel=kernel)[1]
  assert choice.default("linear_recurrence") == "xla"
  assert "pallas_call" not in _program(run(None), params, xs)
  assert "pallas_call" in _program(run("pallas"), params, xs)
  if cell.input_ndim != 1:
    return
  net = jaxrnn.stack(cell, jaxrnn.gru(2))
  with pytest.raises(ValueError, match="kernel='pallas' is not available for gru"):  # a named kernel runs or raises
    jaxrnn.unroll(net, net.init(jax.random.key(0), 3), None, xs, kernel="pallas")


def test_kernel_errors():
  cell = jaxrnn.rg_lru(4)
  params = cell.init(jax.random.key(0), 3)
  xs = jnp.ones((2, 5, 3))
  with pytest.raises(ValueError, match="kernel='pallas' is not available for min_gru_log_scan"):
    jaxrnn.unroll(jaxrnn.min_gru(3, log_scan=True), jaxrnn.min_gru(3).init(jax.random.key(0), 3), None, xs,
                  kernel="pallas")
  with pytest.raises(ValueError, match="kernel='pallas' is not available for lstm"):
    jaxrnn.unroll(jaxrnn.lstm(3), jaxrnn.lstm(3).init(jax.random.key(0), 3), None, xs, kernel="pallas")
  with pytest.raises(ValueError, match=r"scans the step of rg_lru \(mode='step'\)"):
    jaxrnn.unroll(cell, params, None, xs, kernel="pallas", mode="step")
  with pytest.raises(ValueError, match=r"does not honour \['remat'\]"):
    jaxrnn.unroll(cell, params, None, xs, kernel="pallas", remat=True)
  with pytest.raises(ValueError, match="kernel must be None or one of"):
    jaxrnn.unroll(cell, params, None, xs, kernel="triton")
  with pytest.raises(ValueError, match="block must be a positive power of two, got 48"):
    plr.scan(xs, xs, xs[0], block=48)
  with pytest.raises(ValueError, match="kernel must be 'xla' or 'pallas'"):
    parallel_scan.linear_recurrence(xs, xs, xs[0], kernel="cudnn")
