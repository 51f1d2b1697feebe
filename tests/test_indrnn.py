"""The IndRNN: bounded recurrent weights (clipping in the step, init, projection) and argument errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn


def test_recurrent_weights_are_clipped_in_the_step():
  H = 4
  cell = jaxrnn.indrnn(H, activation="identity", recurrent_max_abs=0.9, recurrent_min_abs=0.1)
  params = jaxrnn.IndRNNParams(w_i=jnp.zeros((1, H)), u=jnp.array([-3.0, -0.05, 0.5, 3.0]), b=None)
  carry = jaxrnn.IndRNNCarry(h=jnp.ones(H))
  _, h = cell(params, carry, jnp.zeros(1))
  np.testing.assert_allclose(h, [-0.9, -0.1, 0.5, 0.9])
  # Over T steps the memory decays/grows as u_eff ** T.
  xs = jnp.zeros((6, 1))
  _, hs = jaxrnn.unroll(cell, params, carry, xs)
  np.testing.assert_allclose(hs[-1], np.array([-0.9, -0.1, 0.5, 0.9]) ** 6, rtol=1e-6)
  # A weight beyond the bound gets no gradient; one inside does.
  grad = jax.grad(lambda p: jnp.sum(cell(p, carry, jnp.zeros(1))[1]))(params)
  np.testing.assert_array_equal(grad.u, [0.0, 0.0, 1.0, 0.0])


def test_max_steps_bound_and_init():
  T = 50
  cell = jaxrnn.indrnn(64, max_steps=T)
  u = np.asarray(cell.init(jax.random.key(0), 2).u)
  assert (u >= 0).all() and (u <= 2 ** (1 / T)).all() and u.max() > 0.9  # uniform in [0, 2^(1/T)]
  params = jaxrnn.IndRNNParams(w_i=jnp.zeros((1, 2)), u=jnp.array([5.0, -5.0]), b=None)
  _, h = jaxrnn.indrnn(2, activation="identity", max_steps=T)(params, jaxrnn.IndRNNCarry(h=jnp.ones(2)), jnp.zeros(1))
  np.testing.assert_allclose(h, [2 ** (1 / T), -2 ** (1 / T)], rtol=1e-6)
  # ReLU with |u| <= 2^(1/T): h grows at most by 2x over T steps from the recurrence alone.
  params = jaxrnn.IndRNNParams(w_i=jnp.zeros((1, 2)), u=jnp.array([9.0, 1.0]), b=None)
  _, hs = jaxrnn.unroll(jaxrnn.indrnn(2, max_steps=T), params, jaxrnn.IndRNNCarry(h=jnp.ones(2)), jnp.zeros((T, 1)))
  np.testing.assert_allclose(hs[-1], [2.0, 1.0], rtol=1e-5)


def test_constrain_projects_params():
  p = jaxrnn.IndRNNParams(w_i=jnp.zeros((1, 3)), u=jnp.array([-3.0, 0.01, 3.0]), b=None)
  got = jaxrnn.indrnn_constrain(p, recurrent_max_abs=2.0, recurrent_min_abs=0.5)
  np.testing.assert_allclose(got.u, [-2.0, 0.5, 2.0])
  np.testing.assert_allclose(jaxrnn.indrnn_constrain(p, max_steps=1).u, [-2.0, 0.01, 2.0])


def test_arguments_are_checked():
  with pytest.raises(ValueError, match="recurrent_max_abs or max_steps, not both"):
    jaxrnn.indrnn(3, recurrent_max_abs=1.0, max_steps=10)
  with pytest.raises(ValueError, match="recurrent_min_abs must be <= recurrent_max_abs"):
    jaxrnn.indrnn(3, recurrent_max_abs=0.5, recurrent_min_abs=0.9)
  with pytest.raises(ValueError, match="recurrent_max_abs must be None or a finite non-negative"):
    jaxrnn.indrnn(3, recurrent_max_abs=-1.0)
  with pytest.raises(ValueError, match="max_steps must be a positive int"):
    jaxrnn.indrnn(3, max_steps=0)
  with pytest.raises(ValueError, match="activation must be a callable or one of"):
    jaxrnn.indrnn(3, activation="swishy")
  cell = jaxrnn.indrnn(3)
  params = cell.init(jax.random.key(0), 2)
  with pytest.raises(ValueError, match="params.u must have shape"):
    cell(params._replace(u=jnp.zeros((3, 3))), cell.initial_carry(params), jnp.zeros(2))
