"""Dropout wrappers: off without a key, variational masks constant over time, per-step masks change, zoneout."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn.types import Cell

# Many tiny programs: compiled without XLA's backend optimisations (conftest.quick_compiles).
pytestmark = pytest.mark.usefixtures("quick_compiles")


class HCarry(NamedTuple):
  h: jax.Array  # [*B, H]


def echo(mode):
  """A test cell that outputs its input (``mode="x"``) or the carry it reads (``mode="h"``); the carry is ones."""
  def init(key, input_size):
    return ()

  def initial_carry(params, batch_shape=(), dtype=None, *, key=None):
    del key  # no randomness of its own
    return HCarry(h=jnp.ones(tuple(batch_shape) + (3,), dtype or jnp.float32))

  def step(params, carry, x):
    return HCarry(h=jnp.ones_like(carry.h)), (x if mode == "x" else carry.h)

  return Cell(init=init, initial_carry=initial_carry, step=step, name=f"echo_{mode}")


def run(cell, key, B=2, T=5, F=3):
  params = cell.init(jax.random.key(0), F)
  carry = cell.initial_carry(params, (B,), key=key)
  return jaxrnn.unroll(cell, params, carry, jnp.ones((B, T, F)))[1]


def test_variational_masks_are_constant_over_time():
  hs = run(jaxrnn.variational_dropout(echo("x"), input_rate=0.5), jax.random.key(1), B=3, T=6)
  np.testing.assert_array_equal(hs, jnp.broadcast_to(hs[:, :1], hs.shape))
  assert set(np.unique(np.asarray(hs))) <= {0.0, 2.0}
  assert not np.array_equal(hs[0], hs[1]) or not np.array_equal(hs[1], hs[2])  # one mask per sequence
  hs = run(jaxrnn.variational_dropout(echo("h"), state_rate=0.5), jax.random.key(1), B=3, T=6)
  np.testing.assert_array_equal(hs, jnp.broadcast_to(hs[:, :1], hs.shape))
  assert set(np.unique(np.asarray(hs))) == {0.0, 2.0}


def test_per_step_masks_change_over_time():
  hs = run(jaxrnn.dropout(echo("x"), input_rate=0.5), jax.random.key(1), B=2, T=8)
  assert set(np.unique(np.asarray(hs))) == {0.0, 2.0}
  assert not np.array_equal(hs[:, 0], hs[:, 1])


@pytest.mark.parametrize("wrap", [
    lambda c: jaxrnn.dropout(c, input_rate=0.3, output_rate=0.3),
    lambda c: jaxrnn.variational_dropout(c, input_rate=0.3, state_rate=0.3),
], ids=["dropout", "variational"])
def test_off_without_key_and_batch_equals_vmap(wrap):
  base = jaxrnn.lstm(4)
  cell = wrap(base)
  params = cell.init(jax.random.key(0), 3)
  xs = jax.random.normal(jax.random.key(1), (2, 5, 3))
  _, want = jaxrnn.unroll(base, params, base.initial_carry(params, (2,)), xs)
  _, got = jaxrnn.unroll(cell, params, cell.initial_carry(params, (2,)), xs)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  carry = cell.initial_carry(params, (2,), key=jax.random.key(2))
  _, train = jaxrnn.unroll(cell, params, carry, xs)
  assert not np.allclose(train, want)
  # Per-example keys: batched == vmap, and the same key gives the same masks.
  vm = jax.vmap(lambda c, x: jaxrnn.unroll(cell, params, c, x)[1])(carry, xs)
  np.testing.assert_allclose(vm, train, rtol=1e-6)
  np.testing.assert_array_equal(jaxrnn.unroll(cell, params, carry, xs)[1], train)


def test_zoneout():
  base = jaxrnn.lstm(4)
  cell = jaxrnn.zoneout(base, 0.5)
  params = cell.init(jax.random.key(0), 3)
  x = jnp.ones((2, 3))
  c0 = cell.initial_carry(params, (2,), key=jax.random.key(1))
  c0 = c0._replace(cell=jaxrnn.LSTMCarry(h=jnp.full((2, 4), 0.3, jnp.float32), c=jnp.full((2, 4), -0.2, jnp.float32)))
  new_base, _ = base.step(params, c0.cell, x)
  new, h = cell.step(params, c0, x)
  for o, n, z in zip(c0.cell, new_base, new.cell):  # every unit is either kept or updated
    assert bool(jnp.all((z == o) | (z == n)))
  assert bool(jnp.any(new.cell.h == c0.cell.h)) and bool(jnp.any(new.cell.h == new_base.h))
  np.testing.assert_array_equal(h, new.cell.h)
  # Inference: the expectation.
  inf, h_inf = cell.step(params, c0._replace(key=None), x)
  np.testing.assert_allclose(inf.cell.c, 0.5 * c0.cell.c + 0.5 * new_base.c, rtol=1e-6)


def test_dropout_around_a_sequence_only_cell():
  bidir = jaxrnn.bidirectional(jaxrnn.gru(3), jaxrnn.gru(3))
  cell = jaxrnn.dropout(bidir, output_rate=0.5)
  params = cell.init(jax.random.key(0), 2)
  xs = jax.random.normal(jax.random.key(1), (2, 5, 2))
  _, want = jaxrnn.unroll(bidir, params, bidir.initial_carry(params, (2,)), xs)
  _, got = jaxrnn.unroll(cell, params, cell.initial_carry(params, (2,), key=jax.random.key(2)), xs)
  ok = np.isclose(got, 0.0) | np.isclose(got, 2 * want, rtol=1e-6)
  assert ok.all() and np.isclose(got, 0.0).any()


def test_bad_rates_and_carry():
  with pytest.raises(ValueError, match="input_rate"):
    jaxrnn.dropout(jaxrnn.gru(3), input_rate=1.0)
  with pytest.raises(ValueError, match="rate"):
    jaxrnn.zoneout(jaxrnn.gru(3), -0.1)
  cell = jaxrnn.dropout(jaxrnn.gru(3), 0.1)
  params = cell.init(jax.random.key(0), 2)
  with pytest.raises(TypeError, match="DropoutCarry"):
    cell.step(params, jaxrnn.GRUCarry(h=jnp.zeros(3)), jnp.ones(2))
  with pytest.raises(TypeError, match="key"):
    cell.initial_carry(params, (2,), key=3)
