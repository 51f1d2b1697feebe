"""The LSTM family beyond the generic registry checks: PyTorch LSTMP parity, variant names and flags, equivalences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from tests import registry
from tests.cases import lstm_family as refs

# Many tiny programs: compiled without XLA's backend optimisations (conftest.quick_compiles).
pytestmark = pytest.mark.usefixtures("quick_compiles")

F64 = jnp.float64


def _random(cell, input_size, batch_shape=(2,), dtype=jnp.float64, T=5, seed=0):
  k_init, k_p, k_c, k_x = jax.random.split(jax.random.key(seed), 4)
  params = registry.random_params(cell, input_size, k_p)
  carry = registry.random_carry(cell, params, batch_shape, k_c)
  xs = jax.random.normal(k_x, batch_shape + (T, input_size), jnp.float32).astype(dtype)
  return params, carry, xs


# --- PyTorch parity: nn.LSTM(proj_size=P) ---


@pytest.mark.parametrize("bias", [True, False])
def test_lstmp_matches_torch(bias):
  torch = pytest.importorskip("torch")
  torch.manual_seed(0)
  B, T, F, H, P = 3, 6, 3, 5, 2
  m = torch.nn.LSTM(F, H, proj_size=P, bias=bias, batch_first=True)
  xs, h0, c0 = torch.randn(B, T, F), torch.randn(1, B, P), torch.randn(1, B, H)
  out, (hn, cn) = m(xs, (h0, c0))
  t2n = lambda t: t.detach().numpy()
  params = jaxrnn.LSTMPParams(w_i=t2n(m.weight_ih_l0).T, w_h=t2n(m.weight_hh_l0).T,
                              b=t2n(m.bias_ih_l0 + m.bias_hh_l0) if bias else None, w_r=t2n(m.weight_hr_l0).T)
  cell = jaxrnn.lstmp(H, P, use_bias=bias, param_dtype=jnp.float32)
  carry = jaxrnn.LSTMPCarry(h=jnp.asarray(t2n(h0[0])), c=jnp.asarray(t2n(c0[0])))
  final, hs = jaxrnn.unroll(cell, params, carry, jnp.asarray(t2n(xs)))
  assert hs.dtype == jnp.float32 and hs.shape == (B, T, P)
  assert np.abs(np.asarray(hs) - t2n(out)).max() <= 1e-5
  assert np.abs(np.asarray(final.h) - t2n(hn[0])).max() <= 1e-5
  assert np.abs(np.asarray(final.c) - t2n(cn[0])).max() <= 1e-5


def test_lstmp_init_shapes_and_bad_carry():
  cell = jaxrnn.lstmp(5, 2)
  params = cell.init(jax.random.key(0), 3)
  assert jax.tree.map(jnp.shape, params) == jaxrnn.LSTMPParams(w_i=(3, 20), w_h=(2, 20), b=(20,), w_r=(5, 2))
  carry = cell.initial_carry(params, (4,))
  with pytest.raises(ValueError, match="carry.h"):
    cell.step(params, carry._replace(h=jnp.zeros((4, 5))), jnp.ones((4, 3)))


# --- Variant names and flags (Greff et al. 2015) ---

EXPECTED_FLAGS = {  # the fields each variant changes from the vanilla LSTM
    "vanilla": {},
    "NIG": {"input_gate": False, "peepholes": ("f", "o")},
    "NFG": {"forget_gate": False, "peepholes": ("i", "o")},
    "NOG": {"output_gate": False, "peepholes": ("i", "f")},
    "NIAF": {"input_activation": False},
    "NOAF": {"output_activation": False},
    "NP": {"peepholes": ()},
    "CIFG": {"coupling": "cifg", "peepholes": ("i", "o")},
    "FGR": {"full_gate_recurrence": True},
}


def test_variant_names_are_greffs():
  assert list(jaxrnn.LSTM_VARIANTS) == list(EXPECTED_FLAGS)


@pytest.mark.parametrize("name", list(EXPECTED_FLAGS))
def test_flags_of_each_variant(name):
  vanilla = jaxrnn.LSTMVariant()
  assert vanilla == jaxrnn.LSTMVariant(True, True, True, True, True, ("i", "f", "o"), None, False)
  flags = jaxrnn.lstm_variant(name)
  changed = {k: v for k, v in flags._asdict().items() if v != getattr(vanilla, k)}
  assert changed == EXPECTED_FLAGS[name]
  assert jaxrnn.lstm_variant(name.lower()) == flags
  # The params hold exactly the blocks and peepholes the flags ask for.
  params = jaxrnn.lstm(3, variant=name).init(jax.random.key(0), 2)
  assert isinstance(params, jaxrnn.PeepholeLSTMParams)
  n_blocks = 3 if name in ("NIG", "NFG", "NOG", "CIFG") else 4
  assert params.w_i.shape == (2, n_blocks * 3) and params.w_h.shape == (3, n_blocks * 3)
  present = tuple(g for g, p in zip("ifo", (params.p_i, params.p_f, params.p_o)) if p is not None)
  assert present == flags.peepholes
  assert (params.w_g is not None) == (name == "FGR")


def test_unknown_variant_lists_valid_names():
  with pytest.raises(ValueError, match="unknown LSTM variant 'NOPE'") as info:
    jaxrnn.lstm(4, variant="NOPE")
  for name in EXPECTED_FLAGS:
    assert repr(name) in str(info.value)
  with pytest.raises(ValueError, match="valid variants"):
    jaxrnn.peephole_lstm(4, variant="vanila")
  with pytest.raises(TypeError, match="variant"):
    jaxrnn.lstm(4, variant=3)
  with pytest.raises(TypeError, match="unknown LSTMVariant flags"):
    jaxrnn.lstm_variant("NP", peephole=())


@pytest.mark.parametrize("kwargs, match", [
    (dict(variant="CIFG", input_gate=False), "coupling='cifg'.*needs both"),
    (dict(variant="NIG", peepholes="ifo"), r"peepholes \['i'\]"),
    (dict(variant="CIFG", peepholes="f"), r"peepholes \['f'\]"),
    (dict(peepholes="x"), "peepholes must be distinct gates"),
    (dict(peepholes="ff"), "peepholes must be distinct gates"),
    (dict(coupling="both"), "coupling must be one of"),
    (dict(variant="FGR", input_gate=False, forget_gate=False, output_gate=False, peepholes=""), "at least one"),
    (dict(variant="NFG", forget_bias=1.0), "forget_bias"),
])
def test_contradictory_flags_raise(kwargs, match):
  with pytest.raises(ValueError, match=match):
    jaxrnn.peephole_lstm(4, **kwargs)


def test_flags_override_the_variant_and_bools_are_checked():
  cell = jaxrnn.lstm(3, variant=jaxrnn.lstm_variant("NOAF", peepholes="o"))
  params = cell.init(jax.random.key(0), 2)
  assert params.p_i is None and params.p_f is None and params.p_o.shape == (3,)
  with pytest.raises(TypeError, match="output_gate must be a bool"):
    jaxrnn.peephole_lstm(3, output_gate=0)


def test_default_lstm_is_unchanged():
  cell = jaxrnn.lstm(4)
  params = cell.init(jax.random.key(0), 3)
  assert type(params) is jaxrnn.LSTMParams and params._fields == ("w_i", "w_h", "b")
  assert type(cell.initial_carry(params)) is jaxrnn.LSTMCarry and cell.name == "lstm"


# --- Equivalences and initialisation ---


def test_np_variant_and_zero_peepholes_equal_the_plain_lstm():
  plain = jaxrnn.lstm(4, param_dtype=jnp.float64)
  p, carry, xs = _random(plain, 3)
  want = jaxrnn.unroll(plain, p, carry, xs)
  zero = jnp.zeros(4, p.w_h.dtype)
  np_params = jaxrnn.PeepholeLSTMParams(p.w_i, p.w_h, p.b, None, None, None, None)
  got_np = jaxrnn.unroll(jaxrnn.lstm(4, variant="NP", param_dtype=jnp.float64), np_params, carry, xs)
  got_vanilla = jaxrnn.unroll(jaxrnn.lstm(4, variant="vanilla", param_dtype=jnp.float64),
                              np_params._replace(p_i=zero, p_f=zero, p_o=zero), carry, xs)
  for got in (got_np, got_vanilla):
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
  # The vanilla cell's default peepholes are zeros: it starts as the LSTM.
  assert not jnp.any(jaxrnn.peephole_lstm(4).init(jax.random.key(0), 3).p_f)


def test_colah_coupling_equals_cifg_with_negated_gate():
  """i = 1 - σ(z) = σ(-z): colah's form with pre-activation z is CIFG with -z (without peepholes)."""
  colah = jaxrnn.coupled_lstm(4, coupling="colah", param_dtype=jnp.float64)
  cifg = jaxrnn.coupled_lstm(4, coupling="cifg", param_dtype=jnp.float64)
  p, carry, xs = _random(colah, 3)
  neg = lambda w: jnp.concatenate([-w[..., :4], w[..., 4:]], axis=-1)  # negate the first block, [f] -> [i]
  q = p._replace(w_i=neg(p.w_i), w_h=neg(p.w_h), b=neg(p.b))
  got, want = jaxrnn.unroll(cifg, q, carry, xs), jaxrnn.unroll(colah, p, carry, xs)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_forget_bias_initialisation():
  b = jaxrnn.lstm(2, variant="vanilla").init(jax.random.key(0), 3).b
  np.testing.assert_array_equal(b, [0, 0, 1, 1, 0, 0, 0, 0])  # [i, f, g, o]
  b = jaxrnn.lstm(2, variant="CIFG").init(jax.random.key(0), 3).b
  np.testing.assert_array_equal(b, [-1, -1, 0, 0, 0, 0])  # [i, g, o]: f = 1 - i starts near σ(1)
  assert not jnp.any(jaxrnn.lstm(2, variant="NFG").init(jax.random.key(0), 3).b)


def test_fgr_carry():
  cell = jaxrnn.lstm(3, variant="FGR")
  params = cell.init(jax.random.key(0), 2)
  carry = cell.initial_carry(params, (4,))
  assert type(carry) is jaxrnn.FGRCarry and carry.gates.shape == (4, 9) and params.w_g.shape == (9, 9)
  with pytest.raises(TypeError, match="FGRCarry"):
    cell.step(params, jaxrnn.LSTMCarry(carry.h, carry.c), jnp.ones((4, 2)))


@pytest.mark.parametrize("make, reference", [
    (lambda: jaxrnn.peephole_lstm(4, peepholes="f", param_dtype=F64), refs.ref_greff(peep="f")),
    (lambda: jaxrnn.peephole_lstm(4, variant="NOAF", input_activation=False, peepholes="io", param_dtype=F64),
     refs.ref_greff(noaf=True, niaf=True, peep="io")),
    (lambda: jaxrnn.coupled_lstm(4, coupling="cifg", peepholes="o", param_dtype=F64),
     refs.ref_greff(coupling="cifg", peep="o")),
    (lambda: jaxrnn.layer_norm_lstm(4, per_gate=False, param_dtype=F64), refs.ref_layer_norm_lstm(False)),
    (lambda: jaxrnn.lstmp(3, 4, use_bias=False, param_dtype=F64), refs.ref_lstmp),
], ids=["peephole_f_only", "noaf_niaf", "cifg_o_peephole", "layer_norm_whole", "lstmp_no_bias_wide"])
def test_more_configurations_match_float64_reference(make, reference):
  cell = make()
  params, carry, xs = _random(cell, 3)
  final, hs = jaxrnn.unroll(cell, params, carry, xs)
  p_np, c_np = registry.to_numpy(params), registry.to_numpy(carry)
  for b in range(2):
    ref_final, ref_hs = registry.reference_unroll(reference, p_np, jax.tree.map(lambda a: a[b], c_np),
                                                  np.asarray(xs[b]))
    np.testing.assert_allclose(np.asarray(hs[b]), ref_hs, rtol=1e-9, atol=1e-12)
    for a, r in zip(jax.tree.leaves(jax.tree.map(lambda a: a[b], final)), jax.tree.leaves(ref_final)):
      np.testing.assert_allclose(np.asarray(a), r, rtol=1e-9, atol=1e-12)


def test_layer_norm_lstm_params_and_invariance():
  cell = jaxrnn.layer_norm_lstm(4)
  params = cell.init(jax.random.key(0), 3)
  assert jax.tree.map(jnp.shape, params) == jaxrnn.LayerNormLSTMParams(
      w_i=(3, 16), w_h=(4, 16), b=(16,), gain_i=(16,), gain_h=(16,), gain_c=(4,), b_c=(4,))
  # LayerNorm makes the step invariant to rescaling the input kernel (up to epsilon).
  params, carry, xs = _random(cell, 3)
  _, hs = jaxrnn.unroll(cell, params, carry, xs)
  _, hs2 = jaxrnn.unroll(cell, params._replace(w_i=100.0 * params.w_i), carry, xs)
  np.testing.assert_allclose(hs, hs2, atol=1e-4)
  with pytest.raises(ValueError, match="epsilon"):
    jaxrnn.layer_norm_lstm(4, epsilon=0.0)
