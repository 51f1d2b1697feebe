"""Cell-specific behaviour of the core cells: initialisation, factory arguments and their errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn

# Many tiny programs: compiled without XLA's backend optimisations (conftest.quick_compiles).
pytestmark = pytest.mark.usefixtures("quick_compiles")


@pytest.mark.parametrize("factory", [jaxrnn.lstm, jaxrnn.gru, jaxrnn.simple_rnn, jaxrnn.irnn])
def test_hidden_size_must_be_positive_int(factory):
  with pytest.raises(ValueError, match="hidden_size must be a positive int, got 0"):
    factory(0)
  with pytest.raises(TypeError, match="hidden_size must be a positive int, got float"):
    factory(2.5)


@pytest.mark.parametrize("factory", [jaxrnn.lstm, jaxrnn.gru, jaxrnn.simple_rnn])
def test_init_arguments_are_checked(factory):
  cell = factory(3)
  with pytest.raises(ValueError, match="input_size must be a positive int, got -1"):
    cell.init(jax.random.key(0), -1)
  with pytest.raises(TypeError, match="key must be a single PRNG key"):
    cell.init(0, 3)
  with pytest.raises(TypeError, match="dtype must be a floating dtype"):
    factory(3, dtype=jnp.int32)
  with pytest.raises(ValueError, match="activation must be a callable or one of"):
    factory(3, activation="swishy")


def test_lstm_initialisation():
  params = jaxrnn.lstm(4, forget_bias=2.0).init(jax.random.key(0), 3)
  assert params.w_i.shape == (3, 16) and params.w_h.shape == (4, 16) and params.b.shape == (16,)
  np.testing.assert_array_equal(params.b, np.r_[np.zeros(4), 2 * np.ones(4), np.zeros(8)])
  for k in range(4):  # each gate's recurrent block is orthogonal
    block = np.asarray(params.w_h[:, 4 * k:4 * (k + 1)], np.float64)
    np.testing.assert_allclose(block.T @ block, np.eye(4), atol=1e-5)
  assert jaxrnn.lstm(4, use_bias=False).init(jax.random.key(0), 3).b is None
  with pytest.raises(ValueError, match="forget_bias=1.0 needs a bias"):
    jaxrnn.lstm(4, use_bias=False, forget_bias=1.0)


def test_typed_and_raw_keys_give_the_same_params():
  cell = jaxrnn.gru(4)
  a = cell.init(jax.random.key(3), 2)
  b = cell.init(jax.random.PRNGKey(3), 2)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


def test_carry_type_is_enforced():
  cell = jaxrnn.lstm(4)
  params = cell.init(jax.random.key(0), 3)
  carry = cell.initial_carry(params, (2,))
  with pytest.raises(TypeError, match=r"carry must be a LSTMCarry\('h', 'c'\)"):
    cell.step(params, (carry.c, carry.h), jnp.zeros((2, 3), jnp.float32))


def test_initial_carry_dtype_and_batch_shape():
  cell = jaxrnn.lstm(4, param_dtype=jnp.bfloat16)
  params = cell.init(jax.random.key(0), 3)
  carry = cell.initial_carry(params, (2, 5))
  assert carry.h.shape == (2, 5, 4) and carry.h.dtype == jnp.bfloat16
  assert cell.initial_carry(params, 7, dtype=jnp.float32).c.shape == (7, 4)
  with pytest.raises(ValueError, match="batch_shape must be a tuple of non-negative ints"):
    cell.initial_carry(params, (-1,))


def test_irnn_is_identity_relu():
  cell = jaxrnn.irnn(3, scale=0.5)
  params = cell.init(jax.random.key(0), 2)
  np.testing.assert_array_equal(params.w_h, 0.5 * np.eye(3))
  np.testing.assert_array_equal(params.b, np.zeros(3))
  with pytest.raises(ValueError, match="irnn fixes activation"):
    jaxrnn.irnn(3, activation="tanh")


def test_cell_is_callable_and_hashable():
  cell = jaxrnn.gru(3)
  params = cell.init(jax.random.key(0), 2)
  carry = cell.initial_carry(params)
  x = jnp.ones(2, jnp.float32)
  a, b = cell(params, carry, x), cell.step(params, carry, x)
  np.testing.assert_array_equal(a[1], b[1])
  assert hash(cell) == hash(cell)  # usable as a static argument of jit
