"""The parallel-in-time solver (jaxrnn.parallel_newton): values and gradients equal to the scan of step.

Fast suite: a representative subset of the registry (a stack solved as one state and layer by layer, an integer
carry leaf, bool inputs, a declared diagonal with two carry leaves) in float64 at T = 32 with ragged lengths, each
with one Jacobian choice; the settings on a GRU (fallback, raise, warm start, damping, reverse, checks); every
declared diagonal against jacfwd. ``JAXRNN_SLOW=1``: every registry cell with every Jacobian choice at T = 1000
(float64, 1e-8), and in float32 (1e-4).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn import parallel_newton
from tests import registry

# Many tiny programs: compiled without XLA's backend optimisations (conftest.quick_compiles).
pytestmark = pytest.mark.usefixtures("quick_compiles")

CASES = {c.name: c for c in registry.all_cases()}
SLOW = os.environ.get("JAXRNN_SLOW") == "1"
slow_only = pytest.mark.skipif(not SLOW, reason="full registry sweep: set JAXRNN_SLOW=1")
JACOBIANS = parallel_newton.JACOBIANS
# (case, jacobian, mode): "step" solves the cell's whole step; "auto" lets a combinator solve each inner cell.
SUBSET = [
    ("stack_lstm_gru", "diagonal", "step"),  # both layers' carries as one state
    ("stack_lstm_gru", "full", "auto"),  # layer by layer (the GRU layer exact Newton)
    ("clockwork_rnn", "full", "step"),  # integer step counter in the carry
    ("reset_on_gru", "picard", "step"),  # bool input leaf (packed flag)
    ("para_lstm", "diagonal", "step"),  # declared diagonal (two JVPs), (h, c) coupled: quasi-Newton
]


def input_size(case):
  return case.input_shape[0] if len(case.input_shape) == 1 else case.input_shape


def setup(case, T, dtype=jnp.float64, B=3, seed=0):
  cell = case.make(param_dtype=dtype, dtype=None)
  k_init, k_p, k_c, k_x = jax.random.split(jax.random.key(seed), 4)
  params = registry.random_params(cell, input_size(case), k_p)
  carry = registry.random_carry(cell, params, jaxrnn.carry_batch_shape(cell, (B,), case.input_shape), k_c)
  xs = jax.random.normal(k_x, (B, T) + case.input_shape, jnp.float32).astype(dtype)
  lengths = jnp.array([T, 0, T // 2 + 1] + [T] * (B - 3))[:B]
  return cell, params, carry, xs, lengths


def floats(tree):
  return [a for a in jax.tree.leaves(tree) if jnp.issubdtype(a.dtype, jnp.floating)]


def both_paths(cell, mode, newton, reverse=False):
  """One jit: (final, hs, grads) by the scan of step and by the solver (``mode``), for one loss.

  A cell without a step (``bidirectional``) is compared with its own sequence path, which scans its inner cells.
  """

  def run(params, carry, xs, lengths, options):
    final, hs = jaxrnn.unroll(cell, params, carry, xs, seq_lengths=lengths, reverse=reverse,
                              mode=("step" if mode == "step" else "auto") if options is None else mode,
                              newton=options)
    return final, hs

  def loss(params, carry, xs, lengths, options):
    final, hs = run(params, carry, xs, lengths, options)
    return jnp.sum(jnp.sin(hs)) + sum(jnp.sum(a ** 2) for a in floats(final))

  grad = jax.grad(loss, argnums=(0, 1, 2), allow_int=True)

  @jax.jit
  def go(params, carry, xs, lengths):
    return [(run(params, carry, xs, lengths, o), grad(params, carry, xs, lengths, o)) for o in (None, newton)]

  return go


def assert_close(a, b, atol, rtol=0.0):
  a, b = floats(a), floats(b)
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=atol)


def check_case(case, jacobian, mode, T, dtype=jnp.float64, atol=1e-8):
  cell, params, carry, xs, lengths = setup(case, T, dtype)
  want, got = both_paths(cell, mode, jaxrnn.ParallelNewton(jacobian=jacobian))(params, carry, xs, lengths)
  # Values: absolute in float64; in float32 relative too, since unbounded cells (irnn, ReLU RNN, an LSTM without a
  # forget gate) reach |h| ~ 1e4 at T = 1000, where float32's spacing alone is ~1e-3 (their errors were 3e-6
  # relative).
  assert_close(got[0], want[0], atol, rtol=atol if dtype == jnp.float32 else 0.0)
  assert_close(got[1], want[1], atol, rtol=atol)  # gradients w.r.t. params, initial carry, inputs


@pytest.mark.parametrize("name,jacobian,mode", SUBSET, ids=["-".join(s) for s in SUBSET])
def test_matches_step_values_and_gradients(name, jacobian, mode):
  check_case(CASES[name], jacobian, mode, T=32)


@slow_only
@pytest.mark.parametrize("jacobian", JACOBIANS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_cell_every_jacobian(name, jacobian):
  case = CASES[name]
  check_case(case, jacobian, "step" if case.has_step else "auto", T=1000)


@slow_only
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_cell_float32(name):
  case = CASES[name]
  check_case(case, "full", "step" if case.has_step else "auto", T=1000, dtype=jnp.float32, atol=1e-4)


@pytest.fixture(scope="module")
def gru():
  case = CASES["gru"]
  cell, params, carry, xs, lengths = setup(case, 40)
  return cell, params, carry, xs, lengths, jaxrnn.unroll(cell, params, carry, xs, seq_lengths=lengths, mode="step",
                                                         return_all_carries=True)


def test_info_reports_iterations_and_residual(gru):
  cell, params, carry, xs, lengths, (final, hs, carries) = gru
  got = jaxrnn.newton_unroll(cell, params, carry, xs, seq_lengths=lengths, newton=jaxrnn.ParallelNewton("full"))
  assert_close(got[:3], (final, hs, carries), 1e-10)
  info = got[3]
  assert info.residual.shape == (3,) and bool(info.converged) and not bool(info.sequential)
  assert 1 <= int(info.iterations) < 40 and float(info.residual.max()) <= 2.2e-16 ** 0.75
  # Warm start from the solution: nothing left to do.
  again = jaxrnn.newton_unroll(cell, params, carry, xs, seq_lengths=lengths, newton=jaxrnn.ParallelNewton("full"),
                               warm_start=got[2])
  assert int(again[3].iterations) == 0 and bool(again[3].converged)
  assert_close(again[1], hs, 1e-10)


def test_cap_reached_finishes_sequentially_or_raises(gru):
  cell, params, carry, xs, lengths, (_, hs, _) = gru
  capped = jaxrnn.ParallelNewton("jacobi", max_iters=2)
  _, got_hs, _, info = jaxrnn.newton_unroll(cell, params, carry, xs, seq_lengths=lengths, newton=capped)
  assert int(info.iterations) == 2 and not bool(info.converged) and bool(info.sequential)
  assert_close(got_hs, hs, 1e-12)  # the scan of step finished it: exact
  with pytest.raises(Exception, match="did not converge in 2 iterations"):
    jax.block_until_ready(jaxrnn.unroll(cell, params, carry, xs, seq_lengths=lengths,
                                        newton=capped._replace(on_failure="raise")))


def test_damping_and_reverse(gru):
  cell, params, carry, xs, lengths, _ = gru
  want = jaxrnn.unroll(cell, params, carry, xs, seq_lengths=lengths, reverse=True, mode="step")
  got = jaxrnn.newton_unroll(cell, params, carry, xs, seq_lengths=lengths, reverse=True,
                             newton=jaxrnn.ParallelNewton("full", damping=0.5))
  assert bool(got[3].converged)
  assert_close(got[:2], want, 1e-10)


@pytest.mark.parametrize("jacobian", ["full", "diagonal", "picard"])
def test_converges_with_tf32_products(monkeypatch, jacobian):
  """A GPU runs float32 products as TF32 (10-bit mantissas). The linear solve of every iteration is rounded so here
  (its matmuls, or its elementwise products), and the solver must still converge to float32's tolerance: the
  iteration solves for the correction, whose rounding shrinks with the residual (the state form stalled at ~1e-3 on
  an H200 and never converged with the full Jacobian)."""
  tf32 = lambda x: jax.lax.reduce_precision(x, exponent_bits=8, mantissa_bits=10)

  def combine_full(left, right):
    (a1, b1), (a2, b2) = left, right
    return tf32(a2 @ a1), tf32(tf32((a2 @ b1[..., None])[..., 0]) + b2)

  linear = parallel_newton._linear
  monkeypatch.setattr(parallel_newton, "_combine_full", combine_full)
  monkeypatch.setattr(parallel_newton, "_linear", lambda kind, a, b, restarts=None: tf32(linear(
      kind, None if a is None else tf32(a), tf32(b), restarts)))
  cell, params, carry, xs, lengths = setup(CASES["gru"], 200, dtype=jnp.float32, B=4)
  carry = jax.tree.map(lambda c: 3 * c, carry)  # states well away from 0: rounding relative to the state is large
  want = jaxrnn.unroll(cell, params, carry, xs, seq_lengths=lengths, mode="step")
  got = jaxrnn.newton_unroll(cell, params, carry, xs, seq_lengths=lengths, newton=jaxrnn.ParallelNewton(jacobian))
  info = got[3]
  assert bool(info.converged) and not bool(info.sequential), (int(info.iterations), float(info.residual.max()))
  assert_close(got[:2], want, 1e-4)


DECLARED = ["indrnn_tanh", "min_gru", "min_gru_log_scan", "min_lstm", "para_gru", "para_lstm", "rg_lru",
            "rg_lru_resets"]  # the full cases (not variants) whose cell declares carry_jacobian_diagonal


def test_declared_diagonals():
  """Every cell declaring ``carry_jacobian_diagonal`` gives the diagonal of the Jacobian computed by jacfwd."""
  declaring = sorted(n for n, c in CASES.items() if c.variant_of is None
                     and c.make(param_dtype=jnp.float64, dtype=None).carry_jacobian_diagonal is not None)
  assert declaring == DECLARED
  for name in DECLARED:
    check_declared_diagonal(CASES[name])


def check_declared_diagonal(case):
  cell, params, carry, xs, _ = setup(case, 2)
  x = xs[0, 0]
  c = jax.tree.map(lambda a: a[0], carry)
  leaves, treedef = jax.tree.flatten(c)
  declared, jac = jax.jit(lambda p, cc, xx: (cell.carry_jacobian_diagonal(p, cc, xx),
                                             jax.jacfwd(lambda c1: cell.step(p, c1, xx)[0])(cc)))(params, c, x)
  declared = treedef.flatten_up_to(declared)
  for i, leaf in enumerate(leaves):
    block = treedef.flatten_up_to(treedef.flatten_up_to(jac)[i])[i].reshape(leaf.size, leaf.size)
    np.testing.assert_allclose(declared[i].reshape(-1), np.diagonal(block), rtol=1e-12, atol=1e-14)


def test_settings_are_checked():
  cell = jaxrnn.gru(3)
  params = cell.init(jax.random.key(0), 2)
  xs = jnp.ones((4, 2))
  for bad, err, match in [
      (jaxrnn.ParallelNewton("newton"), ValueError, "jacobian must be one of"),
      (jaxrnn.ParallelNewton(tol=0.0), ValueError, "tol must be > 0"),
      (jaxrnn.ParallelNewton(max_iters=0), ValueError, "max_iters"),
      (jaxrnn.ParallelNewton(damping=-1.0), ValueError, "damping"),
      (jaxrnn.ParallelNewton(on_failure="ignore"), ValueError, "on_failure must be one of"),
      ("full", TypeError, "newton must be a jaxrnn.ParallelNewton"),
  ]:
    with pytest.raises(err, match=match):
      jaxrnn.unroll(cell, params, None, xs, newton=bad)
  # The fused LSTM/GRU path does not honour it: mode="sequence" says so instead of ignoring it.
  with pytest.raises(ValueError, match=r"does not honour the run option\(s\) \['newton'\]"):
    jaxrnn.unroll(cell, params, None, xs, mode="sequence", newton=True)
  assert jaxrnn.RunOptions(newton=jaxrnn.ParallelNewton()).set_fields() == {"newton"}


def test_complex_carry_is_refused():
  def step(params, carry, x):
    new = carry * params + x
    return new, jnp.real(new)

  cell = jaxrnn.Cell(init=lambda k, f: jnp.asarray(0.5 + 0.5j), initial_carry=lambda p, b=(), d=None, *, key=None:
                     jnp.zeros(tuple(b) + (2,), jnp.complex64), step=step)
  with pytest.raises(ValueError, match="needs a real carry"):
    jaxrnn.unroll(cell, jnp.asarray(0.5 + 0.5j), None, jnp.ones((3, 2)), newton=True)


def test_empty_sequence_and_bad_warm_start():
  cell = jaxrnn.gru(3)
  params = cell.init(jax.random.key(0), 2)
  final, hs, carries, info = jaxrnn.newton_unroll(cell, params, None, jnp.ones((2, 0, 2)))
  assert hs.shape == (2, 0, 3) and carries.h.shape == (2, 0, 3) and bool(info.converged)
  np.testing.assert_array_equal(final.h, np.zeros((2, 3)))
  with pytest.raises(ValueError, match="warm_start must be the carries of every step"):
    jaxrnn.newton_unroll(cell, params, None, jnp.ones((2, 4, 2)), warm_start=jaxrnn.GRUCarry(h=jnp.zeros((2, 3))))


RESTART_FLAGS = np.zeros((2, 24), bool)
RESTART_FLAGS[0, [4, 9, 12, 17, 21]] = True  # segments of at most 5 steps
RESTART_FLAGS[1, [0, 3, 8, 13, 18]] = True  # the last one cut at the length 20 (a flag in the padding, at 22)
RESTART_FLAGS[1, 22] = True


@pytest.mark.parametrize("name", ["gru", "clockwork_rnn"])  # clockwork: an integer step counter that restarts too
def test_declared_restarts_zero_a_t(name):
  """reset_on declares its flags (Cell.carry_resets): A_t = 0 there for every Jacobian choice, so Picard converges
  per segment (fewer iterations than with A_t = I across the flags) and Jacobi (A_t = 0 everywhere) takes as many;
  values equal the scan of the resetting step either way, and gradients too."""
  case = CASES[name]
  cell = jaxrnn.reset_on(case.make(param_dtype=jnp.float64, dtype=None))
  undeclared = cell._replace(carry_resets=None)
  params = registry.random_params(cell, input_size(case), jax.random.key(1))
  xs = (jax.random.normal(jax.random.key(2), (2, 24) + case.input_shape, jnp.float64), jnp.asarray(RESTART_FLAGS))
  lengths = jnp.array([24, 20])

  @jax.jit
  def solve():
    def loss(p, c, jac):
      newton = None if jac is None else jaxrnn.ParallelNewton(jac)
      return jnp.sum(jnp.sin(jaxrnn.unroll(c, p, None, xs, seq_lengths=lengths, mode="step", newton=newton)[1]))

    out = {}
    for jac in ("picard", "jacobi"):
      for declared, c in ((True, cell), (False, undeclared)):
        newton = jaxrnn.ParallelNewton(jac, on_failure="raise")
        out[jac, declared] = jaxrnn.newton_unroll(c, params, None, xs, seq_lengths=lengths, newton=newton)
    want = jaxrnn.unroll(cell, params, None, xs, seq_lengths=lengths, mode="step")
    grads = [jax.grad(loss)(params, c, jac) for c, jac in ((cell, None), (cell, "picard"))]
    return out, want, grads

  out, want, (want_grad, grad) = solve()
  for (jac, declared), (final, hs, _, info) in out.items():
    assert bool(info.converged) and not bool(info.sequential), (jac, declared)
    assert_close((final, hs), want, 1e-10)
  iterations = {k: int(v[3].iterations) for k, v in out.items()}
  assert iterations["picard", True] <= 6 < iterations["picard", False], iterations
  # Jacobi's float update is the same; an integer leaf's (always Picard's) restarts only where declared.
  assert iterations["jacobi", True] <= iterations["jacobi", False], iterations
  assert name != "gru" or iterations["jacobi", True] == iterations["jacobi", False], iterations
  assert_close(grad, want_grad, 1e-9, rtol=1e-9)


def test_declared_restarts_are_checked():
  cell = jaxrnn.reset_on(jaxrnn.gru(3))
  params = cell.init(jax.random.key(0), 2)
  bad = cell._replace(carry_resets=lambda p, inputs: inputs[1][0])  # [B] instead of [T, B]
  with pytest.raises(ValueError, match=r"carry_resets of reset_on\(gru\) must return bool \[T, \*B\] \(4, 2\)"):
    jaxrnn.unroll(bad, params, None, (jnp.ones((2, 4, 2)), jnp.zeros((2, 4), bool)), newton=True)
