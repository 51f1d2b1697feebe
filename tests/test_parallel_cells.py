"""Parallel (``mode="sequence"``, associative scan) == sequential (``mode="step"``, ``lax.scan`` of ``step``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn import parallel_scan
from tests import registry
from tests.cases import parallel as parallel_cases

# Many tiny programs: compiled without XLA's backend optimisations (conftest.quick_compiles).
pytestmark = pytest.mark.usefixtures("quick_compiles")

CASES = [c for c in parallel_cases.CASES if c.make().sequence is not None]
TOL = {jnp.float32: 1e-5, jnp.float64: 1e-10}


def setup(case, dtype, batch_shape=(3,), num_steps=5, seed=0):
  cell = case.make(param_dtype=dtype)
  k_init, k_p, k_c, k_x, k_l = jax.random.split(jax.random.key(seed), 5)
  params = registry.random_params(cell, case.input_shape[0], k_p)
  carry = registry.random_carry(cell, params, batch_shape, k_c)
  xs = jax.random.normal(k_x, batch_shape + (num_steps,) + case.input_shape, jnp.float32).astype(dtype)
  lengths = jnp.array([num_steps, 0, 2][:batch_shape[0]], jnp.int32)
  return cell, params, carry, xs, lengths


def assert_rel_close(got, want, tol):
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    err = np.max(np.abs(a - b), initial=0.0) / max(np.max(np.abs(b), initial=0.0), 1e-30)
    assert err <= tol, f"relative error {err:.3g} > {tol:g}"


def test_every_parallel_cell_is_covered():
  names = {c.name for c in CASES}
  assert {"min_gru", "min_gru_log_scan", "min_lstm", "min_lstm_log_scan", "lru", "rg_lru", "rg_lru_resets",
          "mlstm"} <= names


# Every direction x lengths combination in float64 (tight tolerance); float32 once, on the hardest combination.
_COMBOS = [pytest.param(dtype, reverse, with_lengths, id="-".join(
               [jnp.dtype(dtype).name, "rev" if reverse else "fwd", "lengths" if with_lengths else "full"]))
           for dtype, reverse, with_lengths in [(jnp.float64, False, False), (jnp.float64, False, True),
                                                (jnp.float64, True, False), (jnp.float64, True, True),
                                                (jnp.float32, True, True)]]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("dtype,reverse,with_lengths", _COMBOS)
def test_parallel_matches_sequential(case, dtype, reverse, with_lengths):
  cell, params, carry, xs, lengths = setup(case, dtype)
  lengths = lengths if with_lengths else None
  run = lambda mode: jax.jit(lambda p, c, x: jaxrnn.unroll(cell, p, c, x, seq_lengths=lengths, reverse=reverse,
                                                           mode=mode))(params, carry, xs)
  par, seq = run("sequence"), run("step")
  for leaf in jax.tree.leaves(par):
    assert leaf.dtype == dtype
  assert_rel_close(par, seq, TOL[dtype])


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=["float32", "float64"])
def test_parallel_gradients_match_sequential(case, dtype):
  cell, params, carry, xs, lengths = setup(case, dtype)

  def loss(mode, p, c, x):
    final, hs = jaxrnn.unroll(cell, p, c, x, seq_lengths=lengths, reverse=True, mode=mode)
    weights = jnp.sin(jnp.arange(hs.size, dtype=hs.dtype).reshape(hs.shape))
    return jnp.sum(hs * weights) + sum(jnp.sum(jnp.tanh(leaf)) for leaf in jax.tree.leaves(final))

  grad = lambda mode: jax.jit(jax.grad(lambda *a: loss(mode, *a), argnums=(0, 1, 2)))(params, carry, xs)
  # Gradients pass through more operations than values; float32 gets a little more room.
  assert_rel_close(grad("sequence"), grad("step"), 1e-10 if dtype == jnp.float64 else 1e-4)


def rg_lru_resets_setup(B=2, T=6, F=3):
  cell = jaxrnn.rg_lru(4, resets=True, param_dtype=jnp.float64)
  params = registry.random_params(cell, F, jax.random.key(1))
  feats = jax.random.normal(jax.random.key(2), (B, T, F), jnp.float64)
  flags = jnp.zeros((B, T), bool).at[:, 3].set(True)
  carry = registry.random_carry(cell, params, (B,), jax.random.key(3), jnp.float64)
  return cell, params, feats, flags, carry


def test_rg_lru_reset_restarts_the_segment():
  cell, params, feats, flags, carry = rg_lru_resets_setup()
  assert cell.input_ndim == (1, 0)
  assert cell.init(jax.random.key(0), 3).w.shape == (3, 12)  # init(key, F): the flag is not a feature
  zero = cell.initial_carry(params, (2,), jnp.float64)
  for mode in ("sequence", "step"):
    final, hs = jaxrnn.unroll(cell, params, carry, (feats, flags), mode=mode)
    final2, hs2 = jaxrnn.unroll(cell, params, zero, (feats[:, 3:], flags[:, 3:]), mode=mode)
    np.testing.assert_allclose(hs[:, 3:], hs2, rtol=1e-12, atol=1e-12)  # as if started from zero
    np.testing.assert_allclose(final.h, final2.h, rtol=1e-12, atol=1e-12)
    assert not np.allclose(hs[:, :3], jaxrnn.unroll(cell, params, zero, (feats[:, :3], flags[:, :3]), mode=mode)[1])
    # A numeric flag (nonzero: reset) is the bool flag.
    np.testing.assert_array_equal(jaxrnn.unroll(cell, params, carry, (feats, flags.astype(jnp.int32) * 7),
                                                mode=mode)[1], hs)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("mode", ["sequence", "step"])
def test_rg_lru_reset_pair_through_unroll_matches_numpy(mode, reverse):
  cell, params, feats, flags, carry = rg_lru_resets_setup(B=3)
  flags = flags.at[1, 1].set(True)
  lengths = jnp.array([6, 4, 0])
  final, hs = jax.jit(lambda p, c, x: jaxrnn.unroll(cell, p, c, x, seq_lengths=lengths, reverse=reverse,
                                                    mode=mode))(params, carry, (feats, flags))
  ref = parallel_cases.ref_rg_lru(True)
  p = jax.tree.map(np.asarray, params)
  for b, length in enumerate(np.asarray(lengths)):
    h, want = np.asarray(carry.h[b]), np.zeros((6, 4))
    for t in (range(length)[::-1] if reverse else range(length)):
      x = np.concatenate([np.asarray(feats[b, t]), [float(flags[b, t])]])  # the reference reads the packed flag
      c, want[t] = ref(p, jaxrnn.RGLRUCarry(h=h), x)
      h = c.h
    np.testing.assert_allclose(hs[b], want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(final.h[b], h, rtol=1e-10, atol=1e-12)


def test_rg_lru_reset_pair_input_errors():
  cell, params, feats, flags, carry = rg_lru_resets_setup()
  with pytest.raises(TypeError, match=r"x of rg_lru_resets must be the pair \(x, should_reset\).*shape \(2, 3\)"):
    cell.step(params, carry, feats[:, 0])
  with pytest.raises(ValueError, match=r"should_reset of rg_lru_resets must have the shape of x without its "
                                       r"feature axis \(2,\), got shape \(3,\)"):
    cell.step(params, carry, (feats[:, 0], jnp.zeros(3, bool)))
  with pytest.raises(TypeError, match="should_reset of rg_lru_resets must be bool or numeric"):
    cell.step(params, carry, (feats[:, 0], jax.random.split(jax.random.key(0), 2)))
  with pytest.raises(ValueError, match=r"x must have shape \[\*B, 3\]"):
    cell.step(params, carry, (feats[:, 0, :2], flags[:, 0]))
  with pytest.raises(ValueError, match=r"xs of rg_lru_resets must have the structure of its inputs"):
    jaxrnn.unroll(cell, params, carry, feats, mode="sequence")
  with pytest.raises(TypeError, match=r"xs of rg_lru_resets must be the pair \(xs, should_reset\)"):
    cell.sequence.run(params, carry, feats.swapaxes(0, 1), None, jaxrnn.RunOptions())


def test_lru_ring_initialisation():
  cell = jaxrnn.lru(8, state_size=64, r_min=0.5, r_max=0.9, max_phase=0.3)
  p = cell.init(jax.random.key(0), 3)
  modulus = np.exp(-np.exp(np.asarray(p.nu_log)))
  phase = np.exp(np.asarray(p.theta_log))
  assert modulus.min() >= 0.5 - 1e-6 and modulus.max() <= 0.9 + 1e-6
  assert phase.min() >= 0 and phase.max() <= 0.3 + 1e-6
  np.testing.assert_allclose(np.exp(np.asarray(p.gamma_log)), np.sqrt(1 - modulus ** 2), rtol=1e-5)
  with pytest.raises(ValueError, match="r_min"):
    jaxrnn.lru(4, r_min=0.9, r_max=0.5)


@pytest.mark.parametrize("log_scan", [False, True], ids=["exp_scan", "log_scan"])
def test_min_gru_log_space_is_stable_on_long_saturated_sequences(log_scan):
  cell = jaxrnn.min_gru(2, log_scan=log_scan)
  params = cell.init(jax.random.key(0), 1)._replace(w=jnp.array([[-30.0, -30.0, 1.0, 1.0]]))  # z ~ 1e-13
  xs = jnp.ones((500, 1), jnp.float32)
  carry = jaxrnn.MinGRUCarry(h=jnp.array([1.0, -2.0], jnp.float32))
  _, hs_par = jaxrnn.unroll(cell, params, carry, xs, mode="sequence")
  _, hs_seq = jaxrnn.unroll(cell, params, carry, xs, mode="step")
  assert np.all(np.isfinite(hs_par))
  assert_rel_close(hs_par, hs_seq, 1e-5)


@pytest.mark.parametrize("kind", ["linear", "log", "exp"])
def test_parallel_scan_matches_loop(kind):
  rng = np.random.default_rng(0)
  T, B, H = 6, 3, 2
  a = rng.uniform(0.1, 0.9, (T, B, H))
  b = rng.uniform(0.1, 2.0, (T, B, H))
  h0 = rng.normal(size=(B, H))
  mask = np.arange(T)[:, None] < np.array([6, 0, 3])[None]
  want, h = [], h0
  for t in range(T):
    h = np.where(mask[t][:, None], a[t] * h + b[t], h)
    want.append(h)
  if kind != "linear":
    scan = parallel_scan.log_linear_recurrence if kind == "log" else parallel_scan.exp_linear_recurrence
    hs, last = scan(jnp.log(a), jnp.log(b), jnp.asarray(h0), jnp.asarray(mask))
  else:
    hs, last = parallel_scan.linear_recurrence(jnp.asarray(a), jnp.asarray(b), jnp.asarray(h0), jnp.asarray(mask))
  np.testing.assert_allclose(hs, np.stack(want), rtol=1e-12)
  np.testing.assert_allclose(last, h, rtol=1e-12)
  np.testing.assert_array_equal(last[1], h0[1])  # length 0: the initial state, exactly


@pytest.mark.parametrize("kind", ["linear", "log", "exp"])
def test_parallel_scan_resets_match_loop(kind):
  """Flags restart the state from h_reset (negative entries: the log-space scan cannot fold it into b); a flag at
  a padded step is ignored."""
  rng = np.random.default_rng(1)
  T, B, H = 7, 3, 2
  a = rng.uniform(0.1, 0.9, (T, B, H))
  b = rng.uniform(0.1, 2.0, (T, B, H))
  h0, h_reset = rng.normal(size=(B, H)), rng.normal(size=(B, H)) - 1.0
  mask = np.arange(T)[:, None] < np.array([7, 5, 0])[None]
  resets = rng.uniform(size=(T, B)) < 0.4
  resets[6, 1] = True  # padded: ignored
  want, h = [], h0
  for t in range(T):
    prev = np.where(resets[t][:, None], h_reset, h)
    h = np.where(mask[t][:, None], a[t] * prev + b[t], h)
    want.append(h)
  kw = dict(resets=jnp.asarray(resets), h_reset=jnp.asarray(h_reset))
  if kind != "linear":
    scan = parallel_scan.log_linear_recurrence if kind == "log" else parallel_scan.exp_linear_recurrence
    hs, last = scan(jnp.log(a), jnp.log(b), jnp.asarray(h0), jnp.asarray(mask), **kw)
  else:
    hs, last = parallel_scan.linear_recurrence(jnp.asarray(a), jnp.asarray(b), jnp.asarray(h0), jnp.asarray(mask),
                                               **kw)
  np.testing.assert_allclose(hs, np.stack(want), rtol=1e-12, atol=1e-14)
  np.testing.assert_allclose(last, h, rtol=1e-12, atol=1e-14)
  with pytest.raises(ValueError, match="resets and h_reset go together"):
    parallel_scan.linear_recurrence(jnp.asarray(a), jnp.asarray(b), jnp.asarray(h0), resets=jnp.asarray(resets))
  with pytest.raises(ValueError, match=r"resets must have shape \[T, \*B\]"):
    parallel_scan.linear_recurrence(jnp.asarray(a), jnp.asarray(b), jnp.asarray(h0), resets=jnp.asarray(resets.T),
                                    h_reset=jnp.asarray(h_reset))


def test_parallel_scan_rejects_bad_shapes():
  with pytest.raises(ValueError, match="same shape"):
    parallel_scan.linear_recurrence(jnp.ones((3, 2)), jnp.ones((3, 4)), jnp.ones(2))
  with pytest.raises(ValueError, match="h0"):
    parallel_scan.linear_recurrence(jnp.ones((3, 2)), jnp.ones((3, 2)), jnp.ones(3))
  with pytest.raises(ValueError, match="log_scan"):
    jaxrnn.min_lstm(4, log_space=False, log_scan=True)
  with pytest.raises(ValueError, match="mask"):
    parallel_scan.log_linear_recurrence(jnp.ones((3, 2)), jnp.ones((3, 2)), jnp.ones(2), jnp.ones((4,), bool))


def test_sequence_path_checks_its_inputs():
  cell = jaxrnn.min_gru(4)
  params = cell.init(jax.random.key(0), 3)
  with pytest.raises(ValueError, match="xs"):
    jaxrnn.unroll(cell, params, cell.initial_carry(params, (2,)), jnp.ones((2, 5, 4)), mode="sequence")
  with pytest.raises(ValueError, match="carry"):
    jaxrnn.unroll(cell, params, cell.initial_carry(params, (3,)), jnp.ones((2, 5, 3)), mode="sequence")
