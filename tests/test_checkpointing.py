"""jaxrnn.checkpointing: remat=RematBudget(n) keeps at most n checkpoints, recomputes one forward pass per extra
level, and gives the gradients of remat=False (T not a multiple of the levels, ragged lengths, reverse, stacks)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn import RematBudget
from jaxrnn.checkpointing import plan
from jaxrnn.unroll import run_options
from tests.jaxprs import subjaxprs

pytestmark = pytest.mark.usefixtures("quick_compiles")


@pytest.mark.parametrize("T", [1, 7, 23, 100, 1000, 4097, 100_000])
@pytest.mark.parametrize("n", [2, 9, 13, 40, 64, 5000])
def test_plan_fits_the_budget_with_the_fewest_levels(T, n):
  try:
    levels = plan(T, RematBudget(n))
  except ValueError as e:  # only when no nesting fits: levels of 2 and 3 steps need more than n
    assert "too small" in str(e) and n < 3 * math.log(T, 3) + 2
    return
  assert sum(levels) <= n and math.prod(levels) >= T
  if len(levels) > 1:  # one level fewer cannot fit: its balanced sizes already exceed n
    d = len(levels) - 1
    assert d * (math.ceil(T ** (1 / d) - 1e-9)) > n or d == 1 and T > n


def test_plan_of_true_and_block_sizes_is_the_sqrt_split():
  assert plan(1000, True) == (32, 32) and plan(9, True) == (3, 3) and plan(1000, 10) == (100, 10)
  assert plan(1000, None) == plan(1000, False) == (1000,)
  assert plan(1000, RematBudget(1000)) == (1000,)  # the budget holds every step: no recomputation


def test_bad_budgets():
  with pytest.raises(ValueError, match="too small for T=1000.*carries >= 20"):
    plan(1000, RematBudget(12))
  with pytest.raises(ValueError, match="RematBudget.carries"):
    jaxrnn.unroll(jaxrnn.gru(2), jaxrnn.gru(2).init(jax.random.key(0), 1), None, jnp.ones((3, 1)),
                  remat=RematBudget(0))
  with pytest.raises(TypeError, match="RematBudget.carries"):
    run_options(remat=RematBudget("8"))
  with pytest.raises(TypeError, match="remat must be"):
    run_options(remat=(4, 4))


def _counting(cell, calls):
  """``cell`` whose step reports each call (a host callback on the carry's data, so every run of it counts)."""

  def step(p, c, x):
    jax.debug.callback(lambda h: calls.append(1), jax.tree.leaves(c)[0])
    return cell.step(p, c, x)

  return cell._replace(step=step, input_transform=None, step_transformed=None, sequence=None)


CASES = {  # name: (T, budget, lengths, reverse)
    "T23-3levels-lengths": (23, 9, [23, 11], False),
    "T50-3levels-reverse": (50, 12, [50, 0], True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_budget_gradients_equal_remat_false_and_recompute_is_one_pass_per_level(case):
  T, n, lengths, reverse = CASES[case]
  calls = []
  cell = _counting(jaxrnn.gru(3), calls)
  params = jax.tree.map(lambda a: a.astype(jnp.float64), cell.init(jax.random.key(0), 2))
  carry = jax.random.normal(jax.random.key(1), (2, 3), jnp.float64)
  carry = jaxrnn.GRUCarry(h=carry)
  xs = jax.random.normal(jax.random.key(2), (2, T, 2), jnp.float64)
  lengths = jnp.array(lengths)

  def loss(p, c, x, remat):
    final, hs = jaxrnn.unroll(cell, p, c, x, seq_lengths=lengths, reverse=reverse, remat=remat)
    return jnp.sum(jnp.sin(hs)) + jnp.sum(final.h ** 2), (final, hs)

  grads = lambda remat: jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(params, carry, xs, remat)
  both = jax.jit(lambda: (grads(False), grads(RematBudget(n))))
  want, got = jax.block_until_ready(both())
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-12, atol=1e-12)
  jax.effects_barrier()
  calls.clear()
  jax.block_until_ready(both())
  jax.effects_barrier()
  levels = plan(T, RematBudget(n))
  assert sum(levels) <= n
  assert len(calls) == T + len(levels) * math.prod(levels), (levels, len(calls))  # remat=False: one pass


def test_budget_reaches_the_layers_of_a_stack():
  cell = jaxrnn.stack(jaxrnn.lstm(3), jaxrnn.gru(2))
  params = jax.tree.map(lambda a: a.astype(jnp.float64), cell.init(jax.random.key(0), 2))
  xs = jax.random.normal(jax.random.key(2), (2, 26, 2), jnp.float64)
  lengths = jnp.array([26, 6])

  def loss(p, x, remat):
    return jnp.sum(jnp.cos(jaxrnn.unroll(cell, p, None, x, seq_lengths=lengths, remat=remat)[1]))

  grads = lambda remat: jax.grad(loss, argnums=(0, 1))(params, xs, remat)
  jaxpr = jax.make_jaxpr(lambda: grads(RematBudget(9)))()
  depth = lambda j: max([(e.primitive.name in ("checkpoint", "remat", "remat2")) + depth(s)
                         for e in j.eqns for s in subjaxprs(e)], default=0)
  assert depth(jaxpr.jaxpr) == len(plan(26, RematBudget(9))) - 1 == 2  # (3, 3, 3): two checkpointed levels
  want, got = jax.jit(lambda: (grads(False), grads(RematBudget(9))))()
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
    np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-12, atol=1e-12)


def test_paths_that_cannot_honour_a_budget_say_so():
  cell = jaxrnn.min_gru(3)
  params = cell.init(jax.random.key(0), 2)
  xs = jnp.ones((2, 5, 2))
  with pytest.raises(ValueError, match="does not honour.*remat"):
    jaxrnn.unroll(cell, params, None, xs, mode="sequence", remat=RematBudget(5))
  with pytest.raises(ValueError, match="newton= replaces"):
    jaxrnn.unroll(cell, params, None, xs, remat=RematBudget(5), newton=True)
  # A budget is a hashable run option: a static argument of jit, a field of RunOptions.
  options = jaxrnn.RunOptions(remat=RematBudget(5))
  assert hash(options) == hash(jaxrnn.RunOptions(remat=RematBudget(5)))
  run = jax.jit(lambda p, x, o: jaxrnn.unroll(cell, p, None, x, options=o)[1], static_argnums=2)
  np.testing.assert_allclose(run(params, xs, options), jaxrnn.unroll(cell, params, None, xs, mode="step")[1],
                             rtol=1e-6, atol=1e-6)
