"""The LSTM's and GRU's fused sequence paths (custom_jvp, jaxrnn/cells/_fused_scan.py) == the scan of the step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn

# Many tiny programs: compiled without XLA's backend optimisations (conftest.quick_compiles).
pytestmark = pytest.mark.usefixtures("quick_compiles")


CELLS = {"lstm": jaxrnn.lstm, "gru": jaxrnn.gru}
for_cells = pytest.mark.parametrize("name", sorted(CELLS))


def setup(name, param_dtype=jnp.float64, **kw):
  cell = CELLS[name](4, param_dtype=param_dtype, **kw)
  params = registry_like(cell.init(jax.random.key(0), 3))
  carry = jax.tree.map(lambda a: a + 0.3, cell.initial_carry(params, (3,)))
  xs = jax.random.normal(jax.random.key(1), (3, 5, 3), param_dtype)
  return cell, params, carry, xs, jnp.array([5, 0, 3])


def registry_like(params):
  """Nonzero biases (zeros by default), so that their tangents matter."""
  return jax.tree.map(lambda a: a + 0.1 * jnp.sin(jnp.arange(a.size, dtype=a.dtype)).reshape(a.shape), params)


def run(cell, mode, reverse=False, with_lengths=True):
  def f(p, c, x, lengths):
    final, hs = jaxrnn.unroll(cell, p, c, x, seq_lengths=lengths if with_lengths else None, reverse=reverse,
                              mode=mode)
    return final, hs
  return f


def close(a, b, tol):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=tol, atol=tol)


@for_cells
def test_values_jvp_and_grad_match_step(name):
  # (reverse=True only reverses the inputs before the sequence path: tests/test_generic.py covers it.)
  cell, params, carry, xs, lengths = setup(name)
  seq, step = run(cell, "sequence"), run(cell, "step")
  close(seq(params, carry, xs, lengths), step(params, carry, xs, lengths), 1e-12)
  tangents = jax.tree.map(lambda a: jnp.cos(jnp.arange(a.size, dtype=a.dtype)).reshape(a.shape), (params, carry, xs))
  jvp = lambda f: jax.jvp(lambda p, c, x: f(p, c, x, lengths), (params, carry, xs), tangents)
  close(jax.jit(lambda: jvp(seq))(), jvp(step), 1e-12)

  def loss(f):
    return lambda p, c, x: sum(jnp.sum(jnp.sin(a)) for a in jax.tree.leaves(f(p, c, x, lengths)))
  grad = lambda f: jax.grad(loss(f), argnums=(0, 1, 2))(params, carry, xs)
  close(jax.jit(lambda: grad(seq))(), grad(step), 1e-12)
  if name != "lstm":
    return
  # Second order (the JVP rule is itself differentiable): a Hessian-vector product.
  hvp = lambda f: jax.jvp(lambda p: jax.grad(loss(f))(p, carry, xs), (params,), (tangents[0],))[1]
  close(hvp(seq), hvp(step), 1e-10)


@for_cells
def test_only_some_inputs_differentiated_and_vmap(name):
  cell, params, carry, xs, lengths = setup(name)
  seq, step = run(cell, "sequence", with_lengths=False), run(cell, "step", with_lengths=False)
  for argnums in (0, 2):  # params only (carry and xs are symbolic zeros), xs only
    g = [jax.grad(lambda *a: jnp.sum(f(*a, None)[1] ** 2), argnums=argnums)(params, carry, xs) for f in (seq, step)]
    close(g[0], g[1], 1e-12)
  vm = [jax.vmap(lambda c, x: f(params, c, x, None))(carry, xs) for f in (seq, step)]
  close(vm[0], vm[1], 1e-12)


@for_cells
def test_bfloat16_compute_no_bias_and_custom_activations(name):
  cell, params, carry, xs, lengths = setup(name, jnp.float32, dtype=jnp.bfloat16, use_bias=False,
                                           gate_activation="hard_sigmoid", activation=jax.nn.soft_sign)
  seq, step = run(cell, "sequence"), run(cell, "step")
  close(seq(params, carry, xs, lengths), step(params, carry, xs, lengths), 1e-6)
  loss = lambda f: lambda p: jnp.sum(f(p, carry, xs, lengths)[1] ** 2)
  close(jax.grad(loss(seq))(params), jax.grad(loss(step))(params), 2e-2)


@for_cells
def test_auto_uses_the_fused_path_and_remat_the_step_scan(name):
  cell, params, carry, xs, lengths = setup(name)
  loss = lambda p, remat: jnp.sum(jaxrnn.unroll(cell, p, carry, xs, seq_lengths=lengths, remat=remat)[1])
  jaxpr = str(jax.make_jaxpr(jax.grad(lambda p: loss(p, False)))(params))
  assert "custom_jvp_call" in jaxpr or "custom_lin" in jaxpr or jaxpr.count("scan") >= 2
  assert "remat" in str(jax.make_jaxpr(jax.grad(lambda p: loss(p, True)))(params))
  close(jax.grad(loss)(params, False), jax.grad(loss)(params, True), 1e-12)
