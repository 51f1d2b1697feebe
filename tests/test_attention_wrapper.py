"""attention_wrapper beyond the generic registry checks: memory handling, alignments, gradients, the regulariser."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxrnn

# Many tiny programs: compiled without XLA's backend optimisations (conftest.quick_compiles).
pytestmark = pytest.mark.usefixtures("quick_compiles")

F, H, S, D, T = 2, 4, 5, 3, 4


def setup(mechanism=None, layer=3):
  mechanism = mechanism or jaxrnn.additive_attention(4, location_kernel_size=3, param_dtype=jnp.float64)
  cell = jaxrnn.attention_wrapper(jaxrnn.gru(H, param_dtype=jnp.float64), mechanism,
                                  memory_size=D, attention_layer_size=layer, param_dtype=jnp.float64)
  params = cell.init(jax.random.key(0), F)
  memory = jax.random.normal(jax.random.key(1), (2, S, D), jnp.float64)
  mask = jnp.arange(S)[None, :] < jnp.array([[S], [2]])
  xs = jax.random.normal(jax.random.key(2), (2, T, F), jnp.float64)
  return cell, params, memory, mask, xs


def test_alignments_from_return_all_carries():
  cell, params, memory, mask, xs = setup()
  carry = cell.initial_carry(params, (2,), memory=memory, memory_mask=mask)
  _, outs, carries = jaxrnn.unroll(cell, params, carry, xs, return_all_carries=True)
  w = np.asarray(carries.weights)  # [B, T, S]
  assert w.shape == (2, T, S) and outs.shape == (2, T, 3)
  np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-12)
  assert np.all(w[1, :, 2:] == 0.0)
  # The memory projection is computed once in initial_carry and never changes.
  np.testing.assert_array_equal(np.asarray(carries.keys[:, -1]), np.asarray(carry.keys))


def test_padded_memory_is_invisible():
  cell, params, memory, mask, xs = setup()
  garbage = jnp.where(mask[..., None], memory, 1e3)
  run = lambda m: jaxrnn.unroll(cell, params, cell.initial_carry(params, (2,), memory=m, memory_mask=mask), xs)[1]
  np.testing.assert_array_equal(np.asarray(run(memory)), np.asarray(run(garbage)))


def test_shared_memory_broadcasts_and_bind_memory():
  cell, params, memory, mask, xs = setup(jaxrnn.luong_attention(param_dtype=jnp.float64), layer=None)
  bound = jaxrnn.bind_memory(cell, memory[0], mask[0])
  c1 = bound.initial_carry(params, (2,))
  c2 = cell.initial_carry(params, (2,), memory=jnp.stack([memory[0]] * 2), memory_mask=jnp.stack([mask[0]] * 2))
  for a, b in zip(jax.tree.leaves(c1), jax.tree.leaves(c2)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  _, outs = jaxrnn.unroll(bound, params, c1, xs)
  assert outs.shape == (2, T, D)  # without a layer the output is the context


def test_gradients_numerically():
  cell, params, memory, mask, xs = setup()

  def loss(p, x, mem):
    carry = cell.initial_carry(p, (2,), memory=mem, memory_mask=mask)
    final, outs = jaxrnn.unroll(cell, p, carry, x, seq_lengths=jnp.array([T, 2]))
    return jnp.sum(jnp.sin(outs)) + jnp.sum(final.weights ** 2)

  check_grads(loss, (params, xs, memory), order=1, modes=("rev",), atol=1e-5, rtol=1e-5)


def test_errors():
  cell, params, memory, mask, xs = setup()
  with pytest.raises(ValueError, match="memory"):
    cell.initial_carry(params, (2,))
  with pytest.raises(ValueError, match="memory"):
    cell.initial_carry(params, (3,), memory=memory)
  with pytest.raises(TypeError, match="memory_mask"):
    cell.initial_carry(params, (2,), memory=memory, memory_mask=mask.astype(jnp.float32))
  with pytest.raises(TypeError, match="mechanism"):
    jaxrnn.attention_wrapper(jaxrnn.gru(H), "additive", memory_size=D)


def test_doubly_stochastic_penalty():
  w = jnp.array([[[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.2, 0.2, 0.6]]])  # [B=1, T=3, S=3]
  step_mask = jnp.array([[True, True, False]])
  memory_mask = jnp.array([[True, True, False]])
  np.testing.assert_allclose(np.asarray(jaxrnn.doubly_stochastic_penalty(w)), [0.04 + 0.04 + 0.16])
  np.testing.assert_allclose(np.asarray(jaxrnn.doubly_stochastic_penalty(w, step_mask=step_mask)), [1.0])
  np.testing.assert_allclose(
      np.asarray(jaxrnn.doubly_stochastic_penalty(w, step_mask=step_mask, memory_mask=memory_mask)), [0.0])
