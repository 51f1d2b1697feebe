"""Truncated BPTT: values equal unroll; k = T equals full BPTT; the gradient is cut at chunk boundaries."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrnn
from tests.registry import counting


def setup(T=6):
  cell = jaxrnn.learned_initial_carry(jaxrnn.gru(4))
  params = jax.tree.map(lambda a: a.astype(jnp.float64), cell.init(jax.random.key(0), 3))
  xs = jax.random.normal(jax.random.key(1), (2, T, 3), jnp.float64)
  return cell, params, xs


def loss_of(run):
  def loss(p, xs):
    final, hs = run(p, xs)
    return jnp.sum(jnp.sin(hs)) + jnp.sum(final.h ** 2)
  return loss


def test_k_equals_T_is_full_bptt():
  cell, params, xs = setup()
  full = loss_of(lambda p, x: jaxrnn.unroll(cell, p, cell.initial_carry(p, (2,)), x))
  trunc = loss_of(lambda p, x: jaxrnn.truncated_unroll(cell, p, cell.initial_carry(p, (2,)), x, chunk_size=6))
  g_full, g_trunc = jax.grad(full)(params, xs), jax.grad(trunc)(params, xs)
  for a, b in zip(jax.tree.leaves(g_full), jax.tree.leaves(g_trunc)):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_values_equal_and_gradient_is_truncated():
  cell, params, xs = setup()
  c0 = cell.initial_carry(params, (2,))
  want = jaxrnn.unroll(cell, params, c0, xs)
  got = jaxrnn.truncated_unroll(cell, params, c0, xs, chunk_size=2)
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)

  # The same gradient by hand: three 2-step unrolls, the carry passed on through stop_gradient.
  def by_hand(p, x):
    c = cell.initial_carry(p, (2,))
    hs = []
    for i in range(3):
      c, h = jaxrnn.unroll(cell, p, c if i == 0 else jax.lax.stop_gradient(c), x[:, 2 * i:2 * i + 2])
      hs.append(h)
    return c, jnp.concatenate(hs, axis=1)

  g_trunc = jax.grad(loss_of(lambda p, x: jaxrnn.truncated_unroll(cell, p, cell.initial_carry(p, (2,)), x,
                                                                  chunk_size=2)))(params, xs)
  g_hand = jax.grad(loss_of(by_hand))(params, xs)
  g_full = jax.grad(loss_of(lambda p, x: jaxrnn.unroll(cell, p, cell.initial_carry(p, (2,)), x)))(params, xs)
  for a, b in zip(jax.tree.leaves(g_trunc), jax.tree.leaves(g_hand)):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
  assert not np.allclose(g_trunc.cell.w_h, g_full.cell.w_h)


def test_time_major_and_errors():
  cell, params, xs = setup()
  c0 = cell.initial_carry(params, (2,))
  _, hs = jaxrnn.truncated_unroll(cell, params, c0, xs, chunk_size=3)
  _, hs_tm = jaxrnn.truncated_unroll(cell, params, c0, jnp.moveaxis(xs, 1, 0), chunk_size=3, time_major=True)
  np.testing.assert_allclose(hs, jnp.moveaxis(hs_tm, 0, 1), rtol=1e-12)
  with pytest.raises(ValueError, match="chunk_size"):
    jaxrnn.truncated_unroll(cell, params, c0, xs, chunk_size=4)
  with pytest.raises(ValueError, match="seq_lengths"):
    jaxrnn.truncated_unroll(cell, params, c0, xs, chunk_size=3, seq_lengths=jnp.array([6, 6]))


def test_eager_calls_compile_once():
  """Outside jit, a second call with the same cell, chunk size, settings and shapes reuses the first call's program
  (before, the scan over chunks traced and compiled the step again on every call); the settings given to unroll
  and its key reach every chunk."""
  cell, traces = counting(jaxrnn.gru(4))
  params = cell.init(jax.random.key(0), 3)
  xs = jax.random.normal(jax.random.key(1), (2, 6, 3))
  c0 = cell.initial_carry(params, (2,))
  jaxrnn.truncated_unroll(cell, params, c0, xs, chunk_size=3)
  once = traces[0]
  _, hs = jaxrnn.truncated_unroll(cell, params, c0, xs + 1, chunk_size=3)
  assert traces[0] == once
  np.testing.assert_allclose(hs, jaxrnn.unroll(cell, params, c0, xs + 1)[1], atol=1e-6)
  for kw in ({"chunk_size": 2}, {"chunk_size": 3, "unroll": True}, {"chunk_size": 3, "remat": True}):
    count = traces[0]
    _, out = jaxrnn.truncated_unroll(cell, params, c0, xs + 1, **kw)
    assert traces[0] > count, kw
    np.testing.assert_allclose(out, hs, atol=1e-6)
  # The key reaches every chunk: with carry=None, a cell with dropout masks draws them from it (so two keys differ).
  drop = jaxrnn.variational_dropout(jaxrnn.gru(4), input_rate=0.5)
  dp = drop.init(jax.random.key(0), 3)
  run = lambda k: jaxrnn.truncated_unroll(drop, dp, None, xs, chunk_size=3, key=jax.random.key(k))[1]
  np.testing.assert_allclose(run(1), run(1))
  assert not np.allclose(run(1), run(2))


def test_train_on_stream_learns():
  cell = jaxrnn.with_projection(jaxrnn.gru(4), 1)
  params = cell.init(jax.random.key(0), 1)
  xs = jax.random.normal(jax.random.key(1), (2, 48, 1))
  ys = jnp.concatenate([jnp.zeros((2, 1, 1)), xs[:, :-1]], axis=1)  # echo the previous input
  opt = optax.adam(3e-2)
  loss = lambda hs, y: jnp.mean((hs - y) ** 2)
  run = jax.jit(lambda p, o, c: jaxrnn.train_on_stream(cell, loss, opt, p, o, c, xs, ys, chunk_size=4))
  opt_state, carry = opt.init(params), cell.initial_carry(params, (2,))
  means = []
  for _ in range(5):
    params, opt_state, carry, losses = run(params, opt_state, cell.initial_carry(params, (2,)))
    means.append(float(losses.mean()))
  assert losses.shape == (12,)
  assert means[-1] < 0.5 * means[0], means


def test_train_on_stream_eager_calls_compile_once():
  """Outside jit, a second call with the same cell, loss, optimizer and shapes reuses the first call's program (the
  step is not traced again) and trains on from where the first left; an optimizer that cannot be a cache key (an
  unhashable object) still runs, compiled for its call."""
  cell, traces = counting(jaxrnn.gru(3))
  params = cell.init(jax.random.key(0), 2)
  xs = jax.random.normal(jax.random.key(1), (2, 8, 2))
  ys = jnp.zeros((2, 8, 3))
  opt = optax.sgd(0.1)
  loss = lambda hs, y: jnp.mean((hs - y) ** 2)
  c0 = cell.initial_carry(params, (2,))
  p1, o1, _, l1 = jaxrnn.train_on_stream(cell, loss, opt, params, opt.init(params), c0, xs, ys, chunk_size=4)
  once = traces[0]
  p2, _, _, l2 = jaxrnn.train_on_stream(cell, loss, opt, p1, o1, c0, xs, ys, chunk_size=4)
  assert traces[0] == once
  assert float(l2.mean()) < float(l1.mean())
  jitted = jax.jit(lambda p, o: jaxrnn.train_on_stream(cell, loss, opt, p, o, c0, xs, ys, chunk_size=4))
  for a, b in zip(jax.tree.leaves(jitted(p1, o1)[0]), jax.tree.leaves(p2)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

  @dataclasses.dataclass
  class Unhashable:  # eq=True without frozen=True: __hash__ is None
    inner: optax.GradientTransformation

    def update(self, grads, state, params=None):
      return self.inner.update(grads, state, params)

  with pytest.raises(TypeError):
    hash(Unhashable(opt))
  p3, _, _, _ = jaxrnn.train_on_stream(cell, loss, Unhashable(opt), p1, o1, c0, xs, ys, chunk_size=4)
  for a, b in zip(jax.tree.leaves(p3), jax.tree.leaves(p2)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
