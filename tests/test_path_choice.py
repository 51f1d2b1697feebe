"""jaxrnn.path_choice: mode="auto" takes the path a measured rule says is faster, forward and differentiated runs
separately, with the values and gradients of the scan of step; explicit modes and kernels are never overridden."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn import PathChoice
from jaxrnn.cells import lru, min_gru, min_lstm, mlstm, rg_lru
from jaxrnn.path_choice import LINEAR_RECURRENCE, Crossover, choose, crossover_rule
from tests.jaxprs import primitives

pytestmark = pytest.mark.usefixtures("quick_compiles")


def _with_rule(cell, choice):
  return cell._replace(sequence=cell.sequence._replace(auto=lambda backend, num_steps, width: choice))


def test_crossover_rule():
  rule = crossover_rule({"cpu": Crossover(forward=None, gradient=2048), "gpu": Crossover(forward=512)})
  assert rule("cpu", 4096, 8) == PathChoice(False, True) and rule("cpu", 2047, 8) == PathChoice(False, False)
  assert rule("gpu", 511, 8) == PathChoice(False, True) and rule("gpu", 512, 8) == PathChoice(True, True)
  assert rule("tpu", 1, 8) == PathChoice(True, True)  # no measurement: the path, as before
  window = crossover_rule({"cpu": Crossover(forward=16, forward_max=1000, gradient=0, gradient_max=4000)})
  assert window("cpu", 15, 10) == PathChoice(False, True) and window("cpu", 100, 10) == PathChoice(True, True)
  assert window("cpu", 101, 10) == PathChoice(False, True) and window("cpu", 401, 10) == PathChoice(False, False)
  assert choose(None, 10, ()) == PathChoice(True, True)
  with pytest.raises(TypeError, match="Crossover"):
    crossover_rule({"cpu": (None, 10)})


def test_the_parallel_cells_declare_the_measured_rule():
  assert jaxrnn.mlstm(2, num_heads=1, chunk_size=None).sequence.auto is LINEAR_RECURRENCE
  # Their own measured rules (CPU): windows in T * width (the associative scans win while their arrays are small).
  for cell, module in ((jaxrnn.min_gru(2), min_gru), (jaxrnn.min_lstm(2), min_lstm), (jaxrnn.lru(2), lru),
                       (jaxrnn.rg_lru(2), rg_lru)):
    assert cell.sequence.auto is module.AUTO, cell.name
  assert min_gru.AUTO("cpu", 2048, 512) == PathChoice(False, True)
  assert min_gru.AUTO("cpu", 4096, 512) == PathChoice(False, False)
  assert min_lstm.AUTO("cpu", 1024, 512) == PathChoice(True, False)
  assert rg_lru.AUTO("cpu", 2048, 512) == PathChoice(True, True)
  assert lru.AUTO("cpu", 512, 512) == PathChoice(False, True)
  assert lru.AUTO("gpu", 10**6, 512) == PathChoice(True, True)
  assert jaxrnn.mlstm(2, num_heads=1).sequence.auto is mlstm.AUTO_CHUNKWISE
  assert mlstm.AUTO_CHUNKWISE("cpu", 256, 2) == PathChoice(False, True)
  assert mlstm.AUTO_CHUNKWISE("cpu", 255, 2) == PathChoice(False, False)
  for cell in (jaxrnn.lstm(2), jaxrnn.stack(jaxrnn.min_gru(2))):  # fused and combinator paths: always taken
    assert cell.sequence.auto is None, cell.name


@pytest.mark.parametrize("choice", [PathChoice(False, True), PathChoice(True, False)],
                         ids=["grad-parallel", "forward-parallel"])
def test_split_paths_give_the_step_scans_values_and_gradients(choice):
  cell = _with_rule(jaxrnn.min_gru(3), choice)
  params = jax.tree.map(lambda a: a.astype(jnp.float64), cell.init(jax.random.key(0), 2))
  xs = jax.random.normal(jax.random.key(1), (2, 9, 2), jnp.float64)
  lengths = jnp.array([9, 4])

  def loss(p, x, mode):
    final, hs = jaxrnn.unroll(cell, p, None, x, seq_lengths=lengths, reverse=True, mode=mode)
    return jnp.sum(jnp.sin(hs)) + jnp.sum(final.h ** 2)

  both = jax.jit(lambda p, x: [jax.value_and_grad(loss, argnums=(0, 1))(p, x, m) for m in ("auto", "step")])
  got, want = both(params, xs)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)
  # The forward program has the step's scan exactly when the rule says so, and so has the gradient's program.
  forward = set(primitives(jax.make_jaxpr(lambda p, x: loss(p, x, "auto"))(params, xs).jaxpr))
  assert ("scan" in forward) == (not choice.forward)
  grad = set(primitives(jax.make_jaxpr(jax.grad(lambda p, x: loss(p, x, "auto")))(params, xs).jaxpr))
  assert ("scan" in grad) == (not choice.gradient)


def test_explicit_modes_and_kernels_are_never_overridden():
  cell = _with_rule(jaxrnn.min_gru(3), PathChoice(False, False))
  params = cell.init(jax.random.key(0), 2)
  xs = jnp.ones((2, 5, 2))
  program = lambda **kw: set(primitives(jax.make_jaxpr(lambda p: jaxrnn.unroll(cell, p, None, xs, **kw))(params)
                                         .jaxpr))
  assert "scan" in program()  # the rule: the scan of step
  assert "scan" not in program(mode="sequence") and "scan" not in program(kernel="xla")
  bad = cell._replace(sequence=cell.sequence._replace(auto=lambda b, t, w: (True, True)))
  with pytest.raises(TypeError, match="PathChoice"):
    jaxrnn.unroll(bad, params, None, xs)
