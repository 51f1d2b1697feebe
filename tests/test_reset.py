"""reset_on: one unroll over concatenated episodes equals running the episodes separately; (x, should_reset) inputs
through every unroll option."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn


def episodes():
  starts = {0: [0, 2], 1: [0, 4, 5]}  # episode starts per batch element
  flags = np.zeros((2, 6), bool)
  for b, s in starts.items():
    flags[b, s[1:]] = True
  return starts, jnp.asarray(flags)


@pytest.mark.parametrize("learned", [False, True], ids=["zeros", "learned"])
def test_equals_separate_episodes(learned):
  base = jaxrnn.learned_initial_carry(jaxrnn.lstm(4)) if learned else jaxrnn.lstm(4)
  cell = jaxrnn.reset_on(base)
  params = cell.init(jax.random.key(0), 3)
  if learned:
    params = params._replace(carry=jax.tree.map(lambda a: a + 0.5, params.carry))
  xs = jax.random.normal(jax.random.key(1), (2, 6, 3))
  starts, flags = episodes()
  # A carry from the middle of some other stream: the flag at t=0 is off, so the first episode continues it.
  carry = jax.tree.map(lambda a: a + 0.1, base.initial_carry(params, (2,)))
  final, hs = jaxrnn.unroll(cell, params, carry, (xs, flags))
  for b, s in starts.items():
    bounds = s + [6]
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
      c0 = jax.tree.map(lambda a: a[b], carry) if i == 0 else base.initial_carry(params)
      c, h = jaxrnn.unroll(base, params, c0, xs[b, lo:hi])
      np.testing.assert_allclose(hs[b, lo:hi], h, rtol=1e-5, atol=1e-6)
    for got, want in zip(jax.tree.leaves(jax.tree.map(lambda a: a[b], final)), jax.tree.leaves(c)):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_pytree_inputs_through_every_unroll_option():
  """(xs, should_reset) with lengths, reverse, time-major, hoist, remat, unroll, jit and vmap == the Python loop."""
  cell = jaxrnn.reset_on(jaxrnn.gru(4))
  params = cell.init(jax.random.key(0), 3)
  xs = jax.random.normal(jax.random.key(1), (2, 6, 3))
  _, flags = episodes()
  flags = flags.astype(jnp.float32)  # numeric flags: nonzero means reset
  lengths = jnp.array([6, 4])
  for reverse in (False, True):
    want = jaxrnn.static_unroll(cell, params, None, (xs, flags), seq_lengths=lengths, reverse=reverse)
    for kw in ({}, {"hoist": True}, {"hoist": False}, {"remat": 2}, {"unroll": 3}):
      run = jax.jit(lambda x, f: jaxrnn.unroll(cell, params, None, (x, f), seq_lengths=lengths, reverse=reverse,
                                               **kw))
      for got, w in zip(jax.tree.leaves(run(xs, flags)), jax.tree.leaves(want)):
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
    tm = jaxrnn.unroll(cell, params, None, (jnp.swapaxes(xs, 0, 1), flags.T), seq_lengths=lengths,
                       reverse=reverse, time_major=True)
    np.testing.assert_allclose(jnp.swapaxes(tm[1], 0, 1), want[1], rtol=1e-5, atol=1e-6)
    one = jax.vmap(lambda x, f, n: jaxrnn.unroll(cell, params, None, (x, f), seq_lengths=n, reverse=reverse)[1])
    np.testing.assert_allclose(one(xs, flags, lengths), want[1], rtol=1e-5, atol=1e-6)


def test_gradient_flows_into_learned_initial_carry():
  cell = jaxrnn.reset_on(jaxrnn.learned_initial_carry(jaxrnn.gru(3)))
  params = cell.init(jax.random.key(0), 2)
  xs = (jnp.ones((4, 2)), jnp.array([False, False, True, False]))

  def loss(p):
    return jnp.sum(jaxrnn.unroll(cell, p, cell.initial_carry(p), xs)[1])

  assert float(jnp.abs(jax.grad(loss)(params).carry.h).sum()) > 0


def test_errors():
  cell = jaxrnn.reset_on(jaxrnn.gru(3))
  params = cell.init(jax.random.key(0), 2)
  with pytest.raises(TypeError, match=r"x of reset_on\(gru\) must be the pair \(x, should_reset\).*shape \(5, 2\)"):
    cell.step(params, cell.initial_carry(params, (5,)), jnp.ones((5, 2)))
  with pytest.raises(ValueError, match=r"xs of reset_on\(gru\) must have the structure of its inputs"):
    jaxrnn.unroll(cell, params, None, jnp.ones((5, 4, 2)))
  with pytest.raises(ValueError, match=r"should_reset of reset_on\(gru\) must have the batch shape of the carry"):
    cell.step(params, cell.initial_carry(params, (5,)), (jnp.ones((5, 2)), jnp.zeros((4,), bool)))
  with pytest.raises(TypeError, match="should_reset of reset_on\\(gru\\) must be bool or numeric"):
    cell.step(params, cell.initial_carry(params), (jnp.ones(2), jax.random.key(0)))
  with pytest.raises(ValueError, match="every leaf of xs must have the same time and batch axes"):
    jaxrnn.unroll(cell, params, None, (jnp.ones((5, 4, 2)), jnp.zeros((5, 3), bool)))


def test_with_reset_flags_is_deprecated():
  with pytest.warns(DeprecationWarning, match="reset_on takes the inputs"):
    xs, flags = jaxrnn.with_reset_flags(jnp.ones((2, 5, 3)), jnp.zeros((2, 5), bool))
  assert xs.shape == (2, 5, 3) and flags.shape == (2, 5)
  with pytest.raises(ValueError, match="should_reset"), pytest.warns(DeprecationWarning):
    jaxrnn.with_reset_flags(jnp.ones((2, 5, 3)), jnp.zeros((2,), bool))


# --- Resets inside parallel scans: reset_on keeps the cell's parallel path --------------------------------------

T_PACKED = 8
PACKED_STARTS = {0: [0, 3], 1: [0, 1, 5, 6]}  # segment starts per row; row 1 resets at t=0 (the given carry unused)


def packed_flags_and_segments():
  flags = np.zeros((2, T_PACKED), bool)
  segments = []  # (row, lo, hi)
  for b, starts in PACKED_STARTS.items():
    flags[b, starts[1:]] = True
    bounds = starts + [T_PACKED]
    segments += [(b, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
  flags[1, 0] = True
  return jnp.asarray(flags), segments


def packed_vs_separate(base, cell, params, carry, xs, flags, segments, par_mode="sequence", with_step=True, **run):
  """value_and_grad of one loss computed three ways: the packed rows through ``cell``'s sequence path
  (``par_mode``) and through the scan of its step (``mode="step"``; ``None`` unless ``with_step``), and the
  segments one by one as a padded batch of the ``base`` cell (its own sequence path), each from the row's carry
  (first segment, no flag at t=0) or the initial carry."""
  n, longest = len(segments), max(hi - lo for _, lo, hi in segments)
  rows = np.array([b for b, _, _ in segments])
  los = np.array([lo for _, lo, _ in segments])
  lengths = np.array([hi - lo for _, lo, hi in segments], np.int32)
  fresh = np.array([lo > 0 or bool(flags[b, 0]) for b, lo, _ in segments])
  seg_of, pos_of = np.zeros((2, T_PACKED), np.int32), np.zeros((2, T_PACKED), np.int32)
  for j, (b, lo, hi) in enumerate(segments):
    seg_of[b, lo:hi], pos_of[b, lo:hi] = j, np.arange(hi - lo)
  last_seg = np.array([max(j for j, s in enumerate(segments) if s[0] == b) for b in range(2)])
  weights = jnp.sin(jnp.arange(2 * T_PACKED * 8, dtype=xs.dtype)).reshape(2, T_PACKED, 8)

  def loss(hs, final):
    return jnp.sum(hs * weights[..., :hs.shape[-1]]) + sum(jnp.sum(jnp.tanh(a)) for a in jax.tree.leaves(final))

  def packed(mode, p, c, x):
    return loss(*jaxrnn.unroll(cell, p, c, (x, flags), mode=mode, **run)[::-1])

  def separate(p, c, x):
    idx = np.minimum(los[:, None] + np.arange(longest), T_PACKED - 1)
    sep_x = x[rows[:, None], idx]  # [n, longest, F]
    init = base.initial_carry(p, (n,), jax.tree.leaves(c)[0].dtype)
    c0 = jax.tree.map(lambda f, g: jnp.where(fresh.reshape((n,) + (1,) * (f.ndim - 1)), f, g[rows]), init, c)
    final, hs = jaxrnn.unroll(base, p, c0, sep_x, seq_lengths=jnp.asarray(lengths), mode="sequence")
    return loss(hs[seg_of, pos_of], jax.tree.map(lambda a: a[last_seg], final))

  grad = lambda f: jax.value_and_grad(f, argnums=(0, 1, 2))(params, carry, xs)
  step = (lambda: grad(lambda *a: packed("step", *a))) if with_step else (lambda: None)
  return jax.jit(lambda: (grad(lambda *a: packed(par_mode, *a)), step(), grad(separate)))()


PARALLEL_BASES = {
    "min_gru": lambda: jaxrnn.min_gru(3, param_dtype=jnp.float64),
    "min_gru_log_scan": lambda: jaxrnn.min_gru(3, log_scan=True, param_dtype=jnp.float64),
    "learned_min_lstm": lambda: jaxrnn.learned_initial_carry(jaxrnn.min_lstm(3, param_dtype=jnp.float64)),
    "lru": lambda: jaxrnn.lru(3, state_size=2, param_dtype=jnp.float64),
    "rg_lru": lambda: jaxrnn.rg_lru(3, param_dtype=jnp.float64),
    "mlstm_chunk3": lambda: jaxrnn.mlstm(4, num_heads=2, chunk_size=3, param_dtype=jnp.float64),
}


def random_setup(base, cell, seed=0):
  from tests import registry
  params = registry.randomize(cell.init(jax.random.key(seed), 3), jax.random.key(seed + 1))  # a nonzero learned carry
  carry = registry.randomize(base.initial_carry(params, (2,)), jax.random.key(seed + 2))
  xs = jax.random.normal(jax.random.key(seed + 3), (2, T_PACKED, 3), jnp.float64)
  return params, carry, xs


def assert_trees_close(got, want, tol):
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    scale = max(float(np.max(np.abs(np.asarray(b)), initial=0.0)), 1.0)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=tol * scale)


@pytest.mark.parametrize("name", list(PARALLEL_BASES))
def test_packed_equals_separate_on_the_parallel_path(name, quick_compiles):
  """Packed rows through reset_on's parallel path == the segments one by one == the scan of the resetting step,
  values and gradients (float64), from a nonzero carry, with a nonzero learned initial carry for learned_min_lstm."""
  base = PARALLEL_BASES[name]()
  cell = jaxrnn.reset_on(base)
  assert cell.sequence is not None and cell.sequence.honours == base.sequence.honours
  flags, segments = packed_flags_and_segments()
  params, carry, xs = random_setup(base, cell)
  par, step, sep = packed_vs_separate(base, cell, params, carry, xs, flags, segments)
  assert_trees_close(par, sep, 1e-10)
  assert_trees_close(par, step, 1e-10)


def test_rg_lru_own_resets_and_reset_on_compose(quick_compiles):
  """reset_on(rg_lru(resets=True)): the cell's own flags (Griffin's unnormalised restart) and reset_on's (to the
  initial carry) inside one parallel scan == the scan of step."""
  cell = jaxrnn.reset_on(jaxrnn.rg_lru(3, resets=True, param_dtype=jnp.float64))
  params = cell.init(jax.random.key(0), 2)
  xs = jax.random.normal(jax.random.key(1), (2, 6, 2), jnp.float64)
  own = jnp.array([[0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0]], bool)
  outer = jnp.array([[0, 0, 0, 1, 0, 0], [0, 0, 0, 1, 1, 0]], bool)
  carry = jaxrnn.RGLRUCarry(h=jnp.ones((2, 3)))
  run = lambda mode: jaxrnn.unroll(cell, params, carry, ((xs, own), outer), seq_lengths=jnp.array([6, 5]), mode=mode)
  assert_trees_close(run("sequence"), run("step"), 1e-12)


def test_packed_equals_separate_under_newton(quick_compiles):
  """The parallel-in-time solver on reset_on's step (the cell's declared diagonal, zero at a flagged step; and
  the Jacobian of gru computed) == the segments one by one, values and gradients."""
  flags, segments = packed_flags_and_segments()
  for base, jac in ((jaxrnn.min_gru(3, param_dtype=jnp.float64), "diagonal"),
                    (jaxrnn.gru(3, param_dtype=jnp.float64), "full")):
    cell = jaxrnn.reset_on(base)
    assert (cell.carry_jacobian_diagonal is None) == (base.carry_jacobian_diagonal is None)
    params, carry, xs = random_setup(base, cell)
    newton = jaxrnn.ParallelNewton(jacobian=jac, on_failure="raise")
    par, _, sep = packed_vs_separate(base, cell, params, carry, xs, flags, segments, par_mode="auto",
                                     with_step=False, newton=newton)
    assert_trees_close(par, sep, 1e-9)


def test_parallel_path_really_runs():
  """reset_on(min_gru) in mode="sequence" lowers to a program without a while loop (the scan of step has one), and
  mode="auto" follows min_gru's measured rule (on CPU, below T = 4096: the scan of step)."""
  cell = jaxrnn.reset_on(jaxrnn.min_gru(4))
  params = cell.init(jax.random.key(0), 3)
  xs, flags = jnp.ones((2, 16, 3)), jnp.zeros((2, 16), bool)
  lowered = lambda mode: jax.jit(lambda x, f: jaxrnn.unroll(cell, params, None, (x, f), mode=mode)).lower(
      xs, flags).as_text()
  assert "while" not in lowered("sequence")
  assert "while" in lowered("step")
  if jax.default_backend() == "cpu":
    assert "while" in lowered("auto")


def test_pallas_kernel_takes_resets_as_data():
  cell = jaxrnn.reset_on(jaxrnn.min_gru(4))
  params = cell.init(jax.random.key(0), 3)
  xs = jax.random.normal(jax.random.key(1), (2, 6, 3))
  _, flags = episodes()
  pallas = jaxrnn.unroll(cell, params, None, (xs, flags), kernel="pallas")
  assert_trees_close(pallas, jaxrnn.unroll(cell, params, None, (xs, flags), mode="step"), 1e-6)


def test_without_a_resetting_path_the_step_runs():
  """A cell whose path declares no resets (gru's fused path, reset_on of reset_on) keeps the scan of the step."""
  assert jaxrnn.reset_on(jaxrnn.gru(3)).sequence is None
  assert jaxrnn.reset_on(jaxrnn.reset_on(jaxrnn.min_gru(3))).sequence is None
  cell = jaxrnn.reset_on(jaxrnn.min_gru(3))
  params = cell.init(jax.random.key(0), 2)
  carry, xs = cell.initial_carry(params, (2,)), jnp.ones((4, 2, 2))
  with pytest.raises(ValueError, match=r"should_reset of reset_on\(min_gru\) must have the batch shape of the carry"):
    cell.sequence(params, carry, (xs, jnp.zeros((4, 3), bool)))
  resets = jaxrnn.min_gru(3).sequence.resets
  with pytest.raises(ValueError, match=r"should_reset of min_gru must have shape \[T, \*B\] \(xs is \(4, 2, 2\)"):
    resets(params, carry, xs, jnp.zeros((5, 2), bool), carry, None, jaxrnn.RunOptions())
  with pytest.raises(ValueError, match=r"reset_carry of min_gru must have the carry's structure"):
    resets(params, carry, xs, jnp.zeros((4, 2), bool), carry.h, None, jaxrnn.RunOptions())


def test_learned_carry_path_runs_every_option(quick_compiles):
  """reset_on(learned_initial_carry(min_gru)): its path honours every run option (the inner parallel path where
  it can, else (remat here) the scan of the step resetting to the learned carry), the function of mode="step"."""
  cell = jaxrnn.reset_on(jaxrnn.learned_initial_carry(jaxrnn.min_gru(3)))
  params = cell.init(jax.random.key(0), 2)
  params = params._replace(carry=jax.tree.map(lambda a: a + 0.7, params.carry))
  xs = jax.random.normal(jax.random.key(1), (2, 6, 2))
  flags = jnp.array([[0, 0, 1, 0, 0, 1], [1, 0, 0, 1, 0, 0]], bool)
  want = jaxrnn.unroll(cell, params, None, (xs, flags), mode="step")
  for kw in ({}, {"remat": 2}):
    assert_trees_close(jaxrnn.unroll(cell, params, None, (xs, flags), **kw), want, 1e-6)


# --- Resets through the combinators: declared from their inner cells' resets, the parallel path kept -------------

def always_parallel(cell):
  """``cell`` with its measured ``mode="auto"`` rule dropped (its path taken on every backend): a combinator runs
  its inner cells in ``mode="auto"``, which on CPU would scan their steps at these sizes (as it does without resets)."""
  return cell._replace(sequence=cell.sequence._replace(auto=None))


def f64(factory, *args, **kw):
  return always_parallel(factory(*args, param_dtype=jnp.float64, **kw))


COMPOSED = {  # (the composition, whether it has a step: then the scan of the resetting step is compared too)
    "stack": (lambda: jaxrnn.stack(f64(jaxrnn.min_gru, 3), f64(jaxrnn.min_lstm, 3), skip_input=True,
                                   skip_output=True), True),
    "wrappers": (lambda: jaxrnn.stack(
        jaxrnn.with_projection(f64(jaxrnn.lru, 3, state_size=2), 3, param_dtype=jnp.float64),
        jaxrnn.residual(jaxrnn.dropout(f64(jaxrnn.rg_lru, 3), input_rate=0.5, output_rate=0.5)),
        jaxrnn.with_input_transform(jaxrnn.learned_initial_carry(f64(jaxrnn.min_gru, 2)), 4,
                                    param_dtype=jnp.float64)), True),
    "bidirectional": (lambda: jaxrnn.stack(
        jaxrnn.bidirectional(f64(jaxrnn.min_gru, 3), f64(jaxrnn.min_lstm, 4)),
        f64(jaxrnn.min_gru, 2, log_scan=True)), False),
}


@pytest.mark.parametrize("name", list(COMPOSED))
def test_packed_equals_separate_through_combinators(name, quick_compiles):
  """reset_on of compositions (stack with skip connections; with_projection, residual, dropout at inference,
  with_input_transform, learned_initial_carry in a stack; a bidirectional layer whose backward cell reads each
  segment backwards) == the segments one by one through the composition (its own paths, no resets) == the scan of
  the resetting step where there is one; values and gradients (float64), from a nonzero carry."""
  make, has_step = COMPOSED[name]
  base = make()
  cell = jaxrnn.reset_on(base)
  assert base.sequence.resets is not None and cell.sequence is not None
  flags, segments = packed_flags_and_segments()
  params, carry, xs = random_setup(base, cell)
  par, step, sep = packed_vs_separate(base, cell, params, carry, xs, flags, segments, with_step=has_step)
  assert_trees_close(par, sep, 1e-10)
  if has_step:
    assert_trees_close(par, step, 1e-10)


def test_packed_bidirectional_with_padding(quick_compiles):
  """Padding after a packed row's last segment (and a flag inside it, ignored): the backward cell starts each row's
  last segment at its last valid step, so the padded row equals the row cut at its length."""
  cell = jaxrnn.reset_on(jaxrnn.bidirectional(f64(jaxrnn.min_gru, 3), f64(jaxrnn.min_gru, 2)))
  params = cell.init(jax.random.key(0), 3)
  xs = jax.random.normal(jax.random.key(1), (2, 7, 3), jnp.float64)
  flags = jnp.array([[0, 0, 1, 0, 0, 0, 1], [0, 1, 0, 0, 1, 0, 0]], bool)
  cut = ((0, 6), (1, 5))
  run = lambda x, f, **kw: jaxrnn.unroll(cell, params, None, (x, f), mode="sequence", **kw)
  (final, hs), cuts = jax.jit(lambda: (run(xs, flags, seq_lengths=jnp.array([6, 5])),
                                       [run(xs[b:b + 1, :n], flags[b:b + 1, :n]) for b, n in cut]))()
  for (b, n), (cut_final, cut_hs) in zip(cut, cuts):
    assert_trees_close((jax.tree.map(lambda a: a[b:b + 1], final), hs[b:b + 1, :n]), (cut_final, cut_hs), 1e-12)
    assert not np.any(np.asarray(hs[b, n:]))


def test_resets_are_declared_from_the_inner_cells():
  """A combinator declares resets only where every inner path does (gru's fused path has none): then reset_on of it
  runs the scan of its resetting step (a bidirectional one has no step: it has no sequence path at all)."""
  m, g = jaxrnn.min_gru(3), jaxrnn.gru(3)
  for with_gru in (jaxrnn.stack(m, g), jaxrnn.bidirectional(m, g), jaxrnn.with_projection(g, 2), jaxrnn.residual(g),
                   jaxrnn.dropout(g), jaxrnn.with_input_transform(g, 3)):
    assert with_gru.sequence.resets is None and jaxrnn.reset_on(with_gru).sequence is None
  for parallel in (jaxrnn.stack(m, m), jaxrnn.bidirectional(m, m), jaxrnn.with_projection(m, 2), jaxrnn.residual(m),
                   jaxrnn.dropout(m), jaxrnn.with_input_transform(m, 3)):
    assert parallel.sequence.resets is not None and jaxrnn.reset_on(parallel).sequence is not None


LOWERED = {
    "stack": lambda: jaxrnn.stack(always_parallel(jaxrnn.min_gru(4)), always_parallel(jaxrnn.min_lstm(4))),
    "bidirectional": lambda: jaxrnn.bidirectional(always_parallel(jaxrnn.min_gru(4)),
                                                  always_parallel(jaxrnn.rg_lru(4))),
    "wrappers": lambda: jaxrnn.with_projection(jaxrnn.residual(jaxrnn.dropout(
        jaxrnn.with_input_transform(always_parallel(jaxrnn.lru(3, state_size=2)), 4), output_rate=0.5)), 2),
}


@pytest.mark.parametrize("name", list(LOWERED))
def test_combinators_keep_the_parallel_path(name):
  """reset_on of a composition of parallel cells lowers to a program without a while loop in mode="sequence"
  (forward, and value and gradient) and in mode="auto" where the inner cells' rules take their paths (here the rules
  are dropped: on CPU at this T they take the scan of step); the scan of the resetting step has one."""
  cell = jaxrnn.reset_on(LOWERED[name]())
  params = cell.init(jax.random.key(0), 3)
  xs, flags = jnp.ones((2, 16, 3)), jnp.zeros((2, 16), bool).at[:, 5].set(True)
  lengths = jnp.array([16, 11])

  def lowered(mode, grad=False):
    run = lambda x, f: jnp.sum(jaxrnn.unroll(cell, params, None, (x, f), seq_lengths=lengths, mode=mode)[1])
    return jax.jit(jax.value_and_grad(run) if grad else run).lower(xs, flags).as_text()

  assert "while" not in lowered("sequence") and "while" not in lowered("sequence", grad=True)
  assert "while" not in lowered("auto")
  if name != "bidirectional":  # (a bidirectional cell has no step)
    assert "while" in lowered("step")


def test_dropout_resets_restart_the_key_too(quick_compiles):
  """dropout's resets with a key (training): a flagged step restarts the wrapped cell's carry and the key from the
  reset carry's, as the scan of the resetting step does; a key in only one of the carries is refused."""
  from jaxrnn.combinators import reset
  cell = jaxrnn.dropout(f64(jaxrnn.min_gru, 3), input_rate=0.3, output_rate=0.4)
  params = cell.init(jax.random.key(0), 2)
  carry = cell.initial_carry(params, (2,), key=jax.random.key(1))
  fresh = cell.initial_carry(params, (2,), key=jax.random.key(2))._replace(cell=jaxrnn.MinGRUCarry(
      h=jnp.full((2, 3), 0.3)))
  xs = jax.random.normal(jax.random.key(3), (7, 2, 2), jnp.float64)
  flags = jnp.array([[0, 0], [0, 1], [1, 0], [0, 0], [0, 1], [1, 0], [0, 0]], bool)
  mask = jnp.arange(7)[:, None] < jnp.array([7, 5])[None]
  options = jaxrnn.RunOptions()
  got = jax.jit(lambda: cell.sequence.resets(params, carry, xs, flags, fresh, mask, options))()
  stepped = cell._replace(sequence=None)  # unroll_with_resets then scans the resetting step
  want = jax.jit(lambda: reset.unroll_with_resets(stepped, params, carry, xs, flags, fresh, mask, options))()
  assert_trees_close(got, want, 1e-12)
  with pytest.raises(ValueError, match=r"must both have a key \(training\) or both none"):
    cell.sequence.resets(params, carry, xs, flags, fresh._replace(key=None), mask, options)
