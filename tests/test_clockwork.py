"""The Clockwork RNN: modules hold their state between ticks, slow modules feed fast ones, the integer counter.

The generic ``test_gradients`` is off for the clockwork cases: ``jax.test_util.check_grads`` perturbs every leaf
of its arguments, including the int32 counter ``carry.t`` (whose tangent is ``float0``), and fails with a
``TypeError``. ``test_gradients_with_the_counter_fixed`` below does the same check with the counter closed over.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn
from tests import registry

PERIODS = (1, 2, 4)
H = 6  # 3 modules of 2 units


def _setup(batch_shape=(2,), num_steps=8, dtype=jnp.float32):
  cell = jaxrnn.clockwork_rnn(H, periods=PERIODS, param_dtype=dtype)
  params = registry.random_params(cell, 3, jax.random.key(1))
  carry = registry.random_carry(cell, params, batch_shape, jax.random.key(2))
  xs = jax.random.normal(jax.random.key(3), batch_shape + (num_steps, 3), dtype)
  return cell, params, carry, xs


def test_modules_update_only_at_their_ticks():
  cell, params, carry, xs = _setup(num_steps=9)
  _, hs = jaxrnn.unroll(cell, params, carry, xs)
  prev = np.concatenate([np.asarray(carry.h)[:, None], np.asarray(hs)[:, :-1]], axis=1)  # h_{t-1}
  changed = np.abs(np.asarray(hs) - prev) > 0  # [B, T, H]
  for i, period in enumerate(PERIODS):
    units = slice(2 * i, 2 * i + 2)
    for t in range(9):
      if t % period == 0:
        assert changed[:, t, units].all(), (i, t)
      else:
        assert not changed[:, t, units].any(), (i, t)


def test_slow_modules_feed_fast_ones_and_not_the_reverse():
  cell, params, carry, xs = _setup(batch_shape=())
  jac = jax.jacobian(lambda h: cell(params, carry._replace(h=h), xs[0])[1])(carry.h)  # [H_out, H_in], t = 0
  jac = np.abs(np.asarray(jac))
  for i in range(3):  # target module
    for j in range(3):  # source module
      block = jac[2 * i:2 * i + 2, 2 * j:2 * j + 2]
      assert (block.max() > 0) == (j >= i), (i, j)
  # The step masks W_h (randomize() above filled every block); init also zeroes the unused blocks.
  w_h = np.asarray(cell.init(jax.random.key(0), 3).w_h)
  assert (w_h[2:, :2] != 0).all()  # sources 1, 2 -> target 0: used
  np.testing.assert_array_equal(w_h[:2, 2:], 0.0)  # source 0 -> slower targets: zero
  np.testing.assert_array_equal(w_h[2:4, 4:], 0.0)  # source 1 -> target 2: zero


def test_counter_with_lengths_reverse_vmap_and_jit():
  cell, params, carry, xs = _setup(batch_shape=(3,), num_steps=5)
  lengths = jnp.array([5, 2, 0])
  for reverse in (False, True):
    final, hs = jax.jit(lambda c, x, r=reverse: jaxrnn.unroll(cell, params, c, x, seq_lengths=lengths,
                                                                reverse=r))(carry, xs)
    assert final.t.dtype == jnp.int32 and final.t.tolist() == [5, 2, 0]
  # The counter of a carry can start anywhere: a sequence continued in chunks is the sequence run at once.
  full, hs_full = jaxrnn.unroll(cell, params, carry, xs)
  mid, hs_a = jaxrnn.unroll(cell, params, carry, xs[:, :3])
  end, hs_b = jaxrnn.unroll(cell, params, mid, xs[:, 3:])
  np.testing.assert_allclose(np.concatenate([hs_a, hs_b], 1), hs_full, rtol=1e-6, atol=1e-6)
  assert end.t.tolist() == full.t.tolist() == [5, 5, 5]
  # Per-example counters under vmap: examples at different phases.
  carry = carry._replace(t=jnp.array([0, 1, 3], jnp.int32))
  batched = cell(params, carry, xs[:, 0])
  vmapped = jax.vmap(cell.step, (None, 0, 0))(params, carry, xs[:, 0])
  for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(vmapped)):
    np.testing.assert_array_equal(a, b)
  assert batched[0].t.tolist() == [1, 2, 4]


def test_gradients_with_the_counter_fixed():
  cell, params, carry, xs = _setup(dtype=jnp.float64, num_steps=4)
  params = jax.tree.map(lambda a: a.astype(jnp.float64), params)

  def loss(p, x, h):
    final, hs = jaxrnn.unroll(cell, p, carry._replace(h=h), x, seq_lengths=jnp.array([4, 3]))
    return jnp.sum(jnp.tanh(hs) * jnp.sin(jnp.arange(hs.size, dtype=hs.dtype).reshape(hs.shape))) + \
        jnp.sum(final.h ** 2)

  check_grads(loss, (params, xs, carry.h.astype(jnp.float64)), order=1, modes=("rev",), atol=1e-5, rtol=1e-5)


def test_arguments_are_checked():
  with pytest.raises(ValueError, match="give periods"):
    jaxrnn.clockwork_rnn(4)
  with pytest.raises(ValueError, match="strictly increasing"):
    jaxrnn.clockwork_rnn(4, periods=(2, 1))
  with pytest.raises(ValueError, match=r"periods\[0\] must be a positive int, got 0"):
    jaxrnn.clockwork_rnn(4, periods=(0, 1))
  with pytest.raises(TypeError, match="periods must be a non-empty tuple"):
    jaxrnn.clockwork_rnn(4, periods=4)
  with pytest.raises(ValueError, match="hidden_size must be divisible by the number of modules 3"):
    jaxrnn.clockwork_rnn(4, num_modules=3)
  with pytest.raises(ValueError, match="num_modules=3 does not match"):
    jaxrnn.clockwork_rnn(4, periods=(1, 2), num_modules=3)
  cell, params, carry, xs = _setup()
  with pytest.raises(TypeError, match="carry.t must be an integer array"):
    cell(params, carry._replace(t=carry.t.astype(jnp.float32)), xs[:, 0])
  with pytest.raises(ValueError, match=r"carry.t must have shape \(2,\)"):
    cell(params, carry._replace(t=jnp.zeros((), jnp.int32)), xs[:, 0])
  with pytest.raises(TypeError, match="ClockworkCarry"):
    cell(params, (carry.h, carry.t), xs[:, 0])
