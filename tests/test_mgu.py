"""The minimal gated unit: Flax parity (variant="flax"), initialisation and argument errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from tests import registry


def flax_to_jaxrnn(variables, reset_gate):
  p = variables["params"]
  return jaxrnn.MGUParams(
      w_i=jnp.concatenate([p["if"]["kernel"], p["in"]["kernel"]], axis=1),
      w_h=jnp.concatenate([p["hf"]["kernel"], p["hn"]["kernel"]], axis=1),
      b=jnp.concatenate([p["if"]["bias"], p["in"]["bias"]]),
      b_hn=p["hn"]["bias"] if reset_gate else None)


@pytest.mark.parametrize("reset_gate", [True, False])
def test_matches_flax_mgu_cell(reset_gate):
  nn = pytest.importorskip("flax.linen")
  B, T, F, H = 2, 5, 3, 4
  layer = nn.MGUCell(features=H, reset_gate=reset_gate)
  xs = jax.random.normal(jax.random.key(0), (T, B, F), jnp.float32)
  h0 = 0.5 * jax.random.normal(jax.random.key(1), (B, H), jnp.float32)
  variables = layer.init(jax.random.key(2), h0, xs[0])
  # Non-trivial biases (Flax initialises b_in and b_hn to zeros).
  variables = {"params": registry.randomize(variables["params"], jax.random.key(3))}
  cell = jaxrnn.mgu(H, variant="flax", reset_gate=reset_gate)
  params = flax_to_jaxrnn(variables, reset_gate)
  assert jax.tree.structure(params) == jax.tree.structure(cell.init(jax.random.key(0), F))
  h_flax, carry = h0, jaxrnn.MGUCarry(h=h0)
  for t in range(T):
    h_flax, out_flax = layer.apply(variables, h_flax, xs[t])
    carry, out = cell(params, carry, xs[t])
    assert out.dtype == jnp.float32
    assert float(jnp.max(jnp.abs(out - out_flax))) <= 1e-5


def test_flax_and_paper_variants_differ():
  params = jaxrnn.mgu(3).init(jax.random.key(0), 2)
  params = registry.randomize(params, jax.random.key(1))
  carry = jaxrnn.MGUCarry(h=jnp.full((3,), 0.3, jnp.float32))
  _, h_zhou = jaxrnn.mgu(3)(params, carry, jnp.ones(2, jnp.float32))
  _, h_flax = jaxrnn.mgu(3, variant="flax")(params._replace(b_hn=jnp.zeros(3, jnp.float32)), carry,
                                            jnp.ones(2, jnp.float32))
  assert not np.allclose(h_zhou, h_flax)


def test_initialisation():
  p = jaxrnn.mgu(4, variant="flax").init(jax.random.key(0), 3)
  assert p.w_i.shape == (3, 8) and p.w_h.shape == (4, 8) and p.b.shape == (8,) and p.b_hn.shape == (4,)
  np.testing.assert_array_equal(p.b, np.r_[np.ones(4), np.zeros(4)])  # Flax's forget_bias_init=ones
  p = jaxrnn.mgu(4).init(jax.random.key(0), 3)
  np.testing.assert_array_equal(p.b, np.zeros(8))
  assert p.b_hn is None
  p = jaxrnn.mgu(4, forget_bias=-1.0).init(jax.random.key(0), 3)
  np.testing.assert_array_equal(p.b[:4], -np.ones(4))
  assert jaxrnn.mgu(4, use_bias=False).init(jax.random.key(0), 3).b is None


def test_arguments_are_checked():
  with pytest.raises(ValueError, match="variant must be one of"):
    jaxrnn.mgu(3, variant="gru")
  with pytest.raises(ValueError, match="hidden_size must be a positive int"):
    jaxrnn.mgu(0)
  with pytest.raises(ValueError, match="forget_bias=1.0 needs a bias"):
    jaxrnn.mgu(3, use_bias=False, forget_bias=1.0)
  with pytest.raises(ValueError, match="input_size must be a positive int"):
    jaxrnn.mgu(3).init(jax.random.key(0), 0)
