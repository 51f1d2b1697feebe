"""unroll(remat=...): memory-bounded backprop gives the same values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn

# Small programs, each run once or twice: compiled without XLA's backend optimisations (conftest.quick_compiles;
# 23 -> 12 s of CPU for this module). The temp sizes read below are the same either way (buffer assignment, not
# fusion, decides them here).
pytestmark = pytest.mark.usefixtures("quick_compiles")


def setup(T=7, B=2):
  cell = jaxrnn.lstm(4)
  params = cell.init(jax.random.key(0), 3)
  carry = cell.initial_carry(params, (B,), jnp.float64)
  xs = jax.random.normal(jax.random.key(1), (B, T, 3), jnp.float64)
  return cell, jax.tree.map(lambda a: a.astype(jnp.float64), params), carry, xs


@pytest.mark.parametrize("remat", [True, 2, 3, 7, 10], ids=lambda r: f"remat={r}")
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
def test_remat_same_values_and_gradients(remat, with_lengths):
  cell, params, carry, xs = setup()
  lengths = jnp.array([7, 4]) if with_lengths else None

  def loss(p, c, x, remat):  # the remat side also hoists the input projection (per block)
    final, hs = jaxrnn.unroll(cell, p, c, x, seq_lengths=lengths, remat=remat, hoist=remat is not False)
    return jnp.sum(jnp.sin(hs)) + jnp.sum(final.c ** 2), (final, hs)

  (l0, out0), g0 = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(params, carry, xs, False)
  (l1, out1), g1 = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True),
                           static_argnums=3)(params, carry, xs, remat)
  for a, b in zip(jax.tree.leaves((l0, out0, g0)), jax.tree.leaves((l1, out1, g1))):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)


def test_remat_with_carries_and_reverse():
  cell, params, carry, xs = setup()
  want = jaxrnn.unroll(cell, params, carry, xs, reverse=True, return_all_carries=True)
  got = jaxrnn.unroll(cell, params, carry, xs, reverse=True, return_all_carries=True, remat=3)
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)


def test_remat_lowers_compiled_temp_memory():
  cell, params, carry, xs = setup(T=400, B=2)
  params = cell.init(jax.random.key(0), 3)
  carry = cell.initial_carry(params, (2,))
  xs = xs.astype(jnp.float32)

  def temp_bytes(remat):
    loss = lambda p: jnp.sum(jaxrnn.unroll(cell, p, carry, xs, remat=remat)[1])
    stats = jax.jit(jax.grad(loss)).lower(params).compile().memory_analysis()
    if stats is None:
      pytest.skip("no memory analysis on this backend")
    return stats.temp_size_in_bytes

  assert temp_bytes(True) < temp_bytes(False)


def test_remat_budget_lowers_it_further():
  """A loss of the final carry (no ``[T, B, H]`` outputs to keep, so the checkpoints dominate): RematBudget(24)
  takes three levels (8, 8, 7), 23 checkpoints, instead of remat=True's (20, 20), 40 (on CPU: 0.12 MB
  instead of 0.18 MB; remat=False: 4.1 MB)."""
  cell = jaxrnn.lstm(32)
  params = cell.init(jax.random.key(0), 1)
  carry = cell.initial_carry(params, (4,))
  xs = jnp.ones((4, 400, 1), jnp.float32)

  def temp_bytes(remat):
    loss = lambda p: jnp.sum(jaxrnn.unroll(cell, p, carry, xs, remat=remat)[0].c)
    stats = jax.jit(jax.grad(loss)).lower(params).compile().memory_analysis()
    if stats is None:
      pytest.skip("no memory analysis on this backend")
    return stats.temp_size_in_bytes

  assert jaxrnn.checkpointing.plan(400, jaxrnn.RematBudget(24)) == (8, 8, 7)
  budget, sqrt = temp_bytes(jaxrnn.RematBudget(24)), temp_bytes(True)  # remat=False: 4.1 MB, above
  assert budget < 0.8 * sqrt < 0.2e6, (budget, sqrt)


def test_bad_remat():
  cell, params, carry, xs = setup()
  with pytest.raises(ValueError, match="remat"):
    jaxrnn.unroll(cell, params, carry, xs, remat=0)
  with pytest.raises(TypeError, match="remat"):
    jaxrnn.unroll(cell, params, carry, xs, remat="yes")
