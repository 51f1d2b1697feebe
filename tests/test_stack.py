"""stack: size inference, composition, skip connections, sequence path with bidirectional layers, dropout keys."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn

# Many tiny programs: compiled without XLA's backend optimisations (conftest.quick_compiles).
pytestmark = pytest.mark.usefixtures("quick_compiles")


def test_init_infers_sizes_and_step_composes():
  cell = jaxrnn.stack(jaxrnn.lstm(4), jaxrnn.gru(3), jaxrnn.simple_rnn(2))
  params = cell.init(jax.random.key(0), 5)
  assert [p.w_i.shape[0] for p in params] == [5, 4, 3]
  carry = cell.initial_carry(params, (2,))
  x = jnp.ones((2, 5))
  new, h = cell(params, carry, x)
  c0, h0 = jaxrnn.lstm(4).step(params[0], carry[0], x)
  c1, h1 = jaxrnn.gru(3).step(params[1], carry[1], h0)
  c2, h2 = jaxrnn.simple_rnn(2).step(params[2], carry[2], h1)
  np.testing.assert_allclose(h, h2, rtol=1e-6)
  assert isinstance(new, tuple) and isinstance(new[1], jaxrnn.GRUCarry)


def test_skip_connections_sizes():
  cell = jaxrnn.stack(jaxrnn.lstm(4), jaxrnn.gru(3), skip_input=True, skip_output=True)
  params = cell.init(jax.random.key(0), 2)
  assert params[1].w_i.shape == (2 + 4, 9)
  _, hs = jaxrnn.unroll(cell, params, cell.initial_carry(params, (2,)), jnp.ones((2, 5, 2)))
  assert hs.shape == (2, 5, 7)


def test_nested_and_sequence_path_equals_layer_by_layer():
  bidir = jaxrnn.bidirectional(jaxrnn.lstm(3), jaxrnn.gru(2))
  inner = jaxrnn.stack(jaxrnn.gru(4, reset_after=False), jaxrnn.simple_rnn(3))  # sequence paths that honour all
  cell = jaxrnn.stack(inner, bidir, jaxrnn.residual(jaxrnn.gru(5)))
  assert cell.sequence.honours == inner.sequence.honours == jaxrnn.types.ALL_OPTIONS
  params = cell.init(jax.random.key(0), 2)
  carry = cell.initial_carry(params, (3,))
  xs = jax.random.normal(jax.random.key(1), (3, 6, 2))
  lengths = jnp.array([6, 3, 0])
  final, hs = jaxrnn.unroll(cell, params, carry, xs, seq_lengths=lengths)
  c0, h = jaxrnn.unroll(inner, params[0], carry[0], xs, seq_lengths=lengths)
  c1, h = jaxrnn.unroll(bidir, params[1], carry[1], h, seq_lengths=lengths)
  c2, h = jaxrnn.unroll(jaxrnn.residual(jaxrnn.gru(5)), params[2], carry[2], h, seq_lengths=lengths)
  for a, b in zip(jax.tree.leaves((final, hs)), jax.tree.leaves(((c0, c1, c2), h))):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
  assert bool((hs[1, 3:] == 0).all()) and bool((hs[2] == 0).all())
  _, hs_step = jaxrnn.unroll(inner, params[0], carry[0], xs, seq_lengths=lengths, mode="step")  # one scan
  np.testing.assert_allclose(hs_step, jaxrnn.unroll(inner, params[0], carry[0], xs, seq_lengths=lengths)[1],
                             rtol=1e-6, atol=1e-6)


def test_dropout_between_layers_uses_the_key():
  cell = jaxrnn.stack(jaxrnn.gru(4), jaxrnn.gru(4), jaxrnn.gru(3), dropout=0.5)
  params = cell.init(jax.random.key(0), 2)
  xs = jnp.ones((2, 5, 2))
  infer = cell.initial_carry(params, (2,))
  train = cell.initial_carry(params, (2,), key=jax.random.key(1))
  assert infer[0].key is None and train[0].key.shape[0] == 2 and isinstance(train[2], jaxrnn.GRUCarry)
  plain = jaxrnn.stack(jaxrnn.gru(4), jaxrnn.gru(4), jaxrnn.gru(3))
  _, hs_plain = jaxrnn.unroll(plain, params, plain.initial_carry(params, (2,)), xs)
  _, hs_infer = jaxrnn.unroll(cell, params, infer, xs)
  _, hs_train = jaxrnn.unroll(cell, params, train, xs)
  np.testing.assert_allclose(hs_infer, hs_plain, rtol=1e-6)
  assert not np.allclose(hs_train, hs_plain)


def test_errors():
  with pytest.raises(ValueError, match="at least one"):
    jaxrnn.stack()
  with pytest.raises(TypeError, match=r"cells\[1\]"):
    jaxrnn.stack(jaxrnn.gru(3), "lstm")
  with pytest.raises(ValueError, match="dropout"):
    jaxrnn.stack(jaxrnn.gru(3), dropout=1.0)
  cell = jaxrnn.stack(jaxrnn.gru(3), jaxrnn.gru(3))
  params = cell.init(jax.random.key(0), 2)
  with pytest.raises(TypeError, match="carry"):
    cell.step(params, cell.initial_carry(params)[0], jnp.ones(2))
  with pytest.raises(TypeError, match="params"):
    cell.initial_carry(params[0])
