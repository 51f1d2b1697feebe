"""Generic checks that every cell in the registry (tests/cases/*.py) must pass."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from tests import registry

# Many tiny programs: compiled without XLA's backend optimisations (conftest.quick_compiles).
pytestmark = pytest.mark.usefixtures("quick_compiles")

CASES = registry.all_cases()
# Variants (``CellCase.variant_of``) share their code's structure with a full case: they run the checks that
# depend on the equations; the structural checks run on full cases only.
FULL_CASES = [c for c in CASES if c.variant_of is None]
T = 6


def for_all(fn):
  return pytest.mark.parametrize("case", CASES, ids=str)(fn)


def for_full(fn):
  return pytest.mark.parametrize("case", FULL_CASES, ids=str)(fn)


def input_size(case):
  return case.input_shape[0] if len(case.input_shape) == 1 else case.input_shape


@functools.lru_cache(maxsize=None)
def setup(case, *, dtype=jnp.float32, param_dtype=None, compute_dtype=None, batch_shape=(3,), num_steps=T,
          seed=0):
  """A cell with randomised params, a random initial carry, inputs ``[*B, T, *F]`` and lengths ``[*B]``.

  Drawn with NumPy (no XLA compile) and cached: the checks of one case share one setup per configuration.
  """
  cell = case.make(param_dtype=param_dtype or dtype, dtype=compute_dtype)
  params = registry.random_params(cell, input_size(case), key=4 * seed)
  carry = registry.random_carry(cell, params, jaxrnn.carry_batch_shape(cell, batch_shape, case.input_shape),
                                key=4 * seed + 1)
  rng = np.random.default_rng(4 * seed + 2)
  xs = jnp.asarray(rng.standard_normal(batch_shape + (num_steps,) + case.input_shape, np.float32).astype(dtype))
  flat = rng.integers(0, num_steps + 1, size=batch_shape).reshape(-1)
  if flat.size >= 2:  # make sure the extremes are present
    flat[0], flat[1] = num_steps, 0
  return cell, params, carry, xs, jnp.asarray(flat.reshape(batch_shape), dtype=jnp.int_)


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
  assert jax.tree.structure(a) == jax.tree.structure(b), (jax.tree.structure(a), jax.tree.structure(b))
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert x.shape == y.shape, (x.shape, y.shape)
    np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=atol)


@for_all
def test_initial_carry_checks_params_and_takes_key(case):
  """Every cell's ``initial_carry`` takes ``key=`` and says what to pass when given a key or a shape first."""
  cell = case.make(param_dtype=jnp.float32, dtype=None)
  key = jax.random.key(1)
  spec = jax.eval_shape(lambda k: cell.init(k, input_size(case)), key)
  batch = jaxrnn.carry_batch_shape(cell, (2,), case.input_shape)
  with_key = jax.eval_shape(lambda p, k: cell.initial_carry(p, batch, key=k), spec, key)
  without = jax.eval_shape(lambda p: cell.initial_carry(p, batch), spec)
  assert all(leaf.shape[:1] == (2,) for leaf in jax.tree.leaves((with_key, without)))
  for bad, what in ((key, "a PRNG key"), (jax.random.PRNGKey(0), "a PRNG key"), ((2,), "a shape"), (2, "a shape")):
    with pytest.raises(TypeError, match=rf"initial_carry takes the cell's params first: .*got {what}"):
      cell.initial_carry(bad, (2,))


@for_all
def test_matches_float64_numpy_reference(case):
  if case.reference is None:
    pytest.skip("checked against a peer implementation instead")
  cell, params, carry, xs, lengths = setup(case, dtype=jnp.float64, batch_shape=(2,))
  final, hs = jax.jit(functools.partial(jaxrnn.unroll, cell))(params, carry, xs)
  p_np, c_np, xs_np = registry.to_numpy(params), registry.to_numpy(carry), np.asarray(xs)
  for b in range(2):
    c_b = jax.tree.map(lambda a: a[b], c_np)
    ref_final, ref_hs = registry.reference_unroll(case.reference, p_np, c_b, xs_np[b])
    np.testing.assert_allclose(np.asarray(hs[b]), ref_hs, rtol=1e-9, atol=1e-12)
    assert_trees_close(jax.tree.map(lambda a: a[b], final), ref_final, rtol=1e-9, atol=1e-12)


@for_full
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_unroll_matches_python_loop(case, reverse):
  # Full-length sequences are covered by the NumPy reference (forwards) and reverse == flip (backwards).
  if not case.has_step:
    pytest.skip("sequence-only cell: static_unroll and return_all_carries need a step")
  cell, params, carry, xs, lengths = setup(case)
  kwargs = dict(seq_lengths=lengths, reverse=reverse, return_all_carries=True)
  got = jax.jit(lambda p, c, x: jaxrnn.unroll(cell, p, c, x, **kwargs))(params, carry, xs)
  want = jaxrnn.static_unroll(cell, params, carry, xs, **kwargs)  # eager: it reads the lengths in Python
  assert_trees_close(got, want, rtol=case.rtol, atol=case.rtol)


@for_full
def test_jit_matches_no_jit(case):
  """Also: the input projection hoisted out of the loop (jit side) == applied in the loop (eager side)."""
  cell, params, carry, xs, lengths = setup(case)
  run = lambda p, c, x, l, hoist: jaxrnn.unroll(cell, p, c, x, seq_lengths=l, reverse=True, hoist=hoist)
  assert_trees_close(jax.jit(functools.partial(run, hoist=True))(params, carry, xs, lengths),
                     run(params, carry, xs, lengths, False), rtol=case.rtol, atol=case.rtol)
  if not case.has_step:
    return
  step_args = (params, carry, xs[:, 0])
  assert_trees_close(jax.jit(cell.step)(*step_args), cell.step(*step_args), rtol=case.rtol, atol=case.rtol)


@for_full
def test_vmap_matches_loop_and_batched(case):
  cell, params, carry, xs, lengths = setup(case, batch_shape=(3,))
  run = lambda c, x, l: jaxrnn.unroll(cell, params, c, x, seq_lengths=l)
  vmapped, batched = jax.jit(lambda c, x, l: (jax.vmap(run)(c, x, l), run(c, x, l)))(carry, xs, lengths)
  run_one = jax.jit(run)  # one compile for the three examples
  looped = [run_one(jax.tree.map(lambda a: a[b], carry), xs[b], lengths[b]) for b in range(3)]
  looped = jax.tree.map(lambda *a: jnp.stack(a), *looped)
  assert_trees_close(vmapped, looped, rtol=case.rtol, atol=case.rtol)
  assert_trees_close(batched, looped, rtol=case.rtol, atol=case.rtol)
  if not case.has_step:
    return
  # One step: leading batch axes == vmap.
  steps = jax.jit(lambda p, c, x: (cell.step(p, c, x), jax.vmap(cell.step, (None, 0, 0))(p, c, x)))
  assert_trees_close(*steps(params, carry, xs[:, 0]), rtol=case.rtol, atol=case.rtol)


@for_full
def test_several_batch_axes_and_time_major(case):
  cell, params, carry, xs, lengths = setup(case, batch_shape=(2, 3))
  flat = lambda a: a.reshape((6,) + a.shape[2:])

  @jax.jit  # one program for the three runs
  def runs(params, carry, xs, lengths):
    flat_run = jaxrnn.unroll(cell, params, jax.tree.map(flat, carry), flat(xs), seq_lengths=flat(lengths))
    time_major = jaxrnn.unroll(cell, params, carry, jnp.moveaxis(xs, 2, 0), seq_lengths=lengths, time_major=True)
    return jaxrnn.unroll(cell, params, carry, xs, seq_lengths=lengths), flat_run, time_major

  (final, hs), (final_f, hs_f), (final_tm, hs_tm) = runs(params, carry, xs, lengths)
  assert_trees_close((jax.tree.map(flat, final), flat(hs)), (final_f, hs_f), rtol=case.rtol, atol=case.rtol)
  assert_trees_close((final, hs), (final_tm, jnp.moveaxis(hs_tm, 0, 2)), rtol=case.rtol, atol=case.rtol)


@functools.lru_cache(maxsize=None)
def float32_outputs(case):
  """``hs`` of the float32 setup's run with lengths (compiled once per case: the half-precision checks compare
  with it)."""
  cell, params, carry, xs, lengths = setup(case, dtype=jnp.float32)
  return np.asarray(jax.jit(functools.partial(jaxrnn.unroll, cell))(params, carry, xs, seq_lengths=lengths)[1],
                    np.float64)


@for_all
@pytest.mark.parametrize("dtype", [jnp.float64, jnp.bfloat16], ids=["float64", "bfloat16"])
def test_dtype_is_kept(case, dtype):
  """Outputs and final carries keep the dtypes (and shapes) of the inputs and the carry. float64 values are checked
  against the NumPy reference (so here only traced: no compile); bfloat16 ones against the float32 run."""
  if dtype == jnp.bfloat16 and not case.bfloat16:
    pytest.skip("no bfloat16 support")
  cell, params, carry, xs, lengths = setup(case, dtype=dtype)
  run = lambda p, c, x, l: jaxrnn.unroll(cell, p, c, x, seq_lengths=l)
  if dtype == jnp.float64:
    final, hs = jax.eval_shape(run, params, carry, xs, lengths)
  else:
    final, hs = jax.jit(run)(params, carry, xs, lengths)
  assert hs.dtype == dtype
  for before, after in zip(jax.tree.leaves(carry), jax.tree.leaves(final)):
    assert after.dtype == before.dtype and after.shape == before.shape
  if dtype == jnp.bfloat16:
    np.testing.assert_allclose(np.asarray(hs, np.float64), float32_outputs(case), atol=0.1, rtol=0.1)


@for_full
def test_bfloat16_compute_with_float32_params_and_carry(case):
  if not case.bfloat16:
    pytest.skip("no bfloat16 support")
  cell, params, carry, xs, lengths = setup(case, param_dtype=jnp.float32, compute_dtype=jnp.bfloat16)
  final, hs = jax.jit(lambda p, c, x, l: jaxrnn.unroll(cell, p, c, x, seq_lengths=l))(params, carry, xs, lengths)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params) if jnp.issubdtype(leaf.dtype, jnp.floating))
  for before, after in zip(jax.tree.leaves(carry), jax.tree.leaves(final)):
    assert after.dtype == before.dtype
  _, params32, carry32, xs32, _ = setup(case, dtype=jnp.float32)  # the same draws: float32_outputs is their run
  chex.assert_trees_all_equal((params, carry, xs), (params32, carry32, xs32))
  np.testing.assert_allclose(np.asarray(hs, np.float64), float32_outputs(case), atol=0.1, rtol=0.1)


@for_full
def test_second_call_does_not_recompile(case):
  cell, params, carry, xs, lengths = setup(case)
  chex.clear_trace_counter()  # `run` below has the same footprint in every case

  @jax.jit
  @chex.assert_max_traces(n=1)
  def run(p, c, x, l):
    return jaxrnn.unroll(cell, p, c, x, seq_lengths=l)

  final, _ = run(params, carry, xs, lengths)
  # New values, and the returned carry fed back in (same dtypes and weak types): no new trace (chex raises).
  _, params2, _, xs2, lengths2 = setup(case, seed=1)
  run(params2, final, xs2, lengths2)


@for_full
def test_reverse_equals_flip(case):
  cell, params, carry, xs, lengths = setup(case)
  time_axis = 1
  # With lengths: the valid part of each sequence reversed by hand, in NumPy.
  xs_np, l_np = np.asarray(xs), np.asarray(lengths)
  flipped = xs_np.copy()
  for b, n in enumerate(l_np):
    flipped[b, :n] = xs_np[b, :n][::-1]

  @jax.jit  # one program for the four runs
  def runs(params, carry, xs, flipped, lengths):
    run = functools.partial(jaxrnn.unroll, cell, params, carry)
    return (run(xs, reverse=True), run(jnp.flip(xs, time_axis)), run(xs, seq_lengths=lengths, reverse=True),
            run(flipped, seq_lengths=lengths))

  (final_r, hs_r), (final_f, hs_f), with_lengths_r, with_lengths_f = runs(params, carry, xs, flipped, lengths)
  assert_trees_close((final_r, hs_r), (final_f, jnp.flip(hs_f, time_axis)), rtol=case.rtol, atol=case.rtol)
  (final_r, hs_r), (final_f, hs_f) = with_lengths_r, with_lengths_f
  hs_f = np.asarray(hs_f).copy()
  for b, n in enumerate(l_np):
    hs_f[b, :n] = hs_f[b, :n][::-1]
  assert_trees_close((final_r, hs_r), (final_f, jnp.asarray(hs_f)), rtol=case.rtol, atol=case.rtol)


@for_full
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_padding_is_invisible(case, reverse):
  cell, params, carry, xs, lengths = setup(case)
  valid = np.asarray(jaxrnn.length_mask(lengths, T).T)  # [B, T]
  garbage = 100.0 * jax.random.normal(jax.random.key(7), xs.shape, xs.dtype)
  xs2 = jnp.where(jnp.asarray(valid).reshape(valid.shape + (1,) * len(case.input_shape)), xs, garbage)

  def loss(p, x):
    final, hs = jaxrnn.unroll(cell, p, carry, x, seq_lengths=lengths, reverse=reverse)
    return sum(jnp.sum(leaf) for leaf in jax.tree.leaves(final) if jnp.issubdtype(leaf.dtype, jnp.floating)) + \
        jnp.sum(hs ** 2), (final, hs)

  loss_and_grad = jax.jit(jax.value_and_grad(loss, has_aux=True))  # one compile for both inputs
  (l1, out1), g1 = loss_and_grad(params, xs)
  (l2, out2), g2 = loss_and_grad(params, xs2)
  assert_trees_close(out1, out2, rtol=0, atol=0)
  assert_trees_close(g1, g2, rtol=1e-6, atol=1e-6)
  hs = np.asarray(out1[1])
  assert np.all(hs[~valid] == 0), "padded outputs must be zeros"
  empty = np.asarray(lengths) == 0
  for before, after in zip(jax.tree.leaves(carry), jax.tree.leaves(out1[0])):
    np.testing.assert_array_equal(np.asarray(after)[empty], np.asarray(before)[empty])


@for_all
def test_gradients(case):
  """Reverse and forward mode through ``unroll``'s default (``mode="auto"``: the path a rule picks, the native loop, a
  parallel scan), in float64 with lengths, against each other and against central differences: for a random
  direction ``v`` of params, the carry's floating leaves and inputs, ``jax.jvp``'s tangent equals
  ``<jax.grad, v>`` (forward mode was missing where a path was a ``jax.custom_vjp``) and ``(loss(x + e v) -
  loss(x - e v)) / 2 e`` (as ``jax.test_util.check_grads`` checks one random direction; off for cases with
  ``check_grads=False``: discontinuities). One program for the value, the tangent and the gradients."""
  cell, params, carry, xs, lengths = setup(case, dtype=jnp.float64, num_steps=4)
  leaves, carry_def = jax.tree.flatten(carry)
  is_float = [jnp.issubdtype(leaf.dtype, jnp.inexact) for leaf in leaves]  # integer ones (a step count) held fixed

  def loss(p, floats, x):
    it = iter(floats)
    c = jax.tree.unflatten(carry_def, [next(it) if f else leaf for leaf, f in zip(leaves, is_float)])
    final, hs = jaxrnn.unroll(cell, p, c, x, seq_lengths=lengths)
    total = jnp.sum(jnp.tanh(hs) * jnp.sin(jnp.arange(hs.size, dtype=hs.dtype).reshape(hs.shape)))
    return total + sum(jnp.sum(l ** 2) for l in jax.tree.leaves(final) if jnp.issubdtype(l.dtype, jnp.inexact))

  args = (params, [leaf for leaf, f in zip(leaves, is_float) if f], xs)
  flat, treedef = jax.tree.flatten(args)
  keys = jax.random.split(jax.random.key(11), len(flat))
  v = jax.tree.unflatten(treedef, [jax.random.normal(k, l.shape, l.dtype) for k, l in zip(keys, flat)])
  run = jax.jit(lambda args, v, e: (jax.jvp(loss, args, v)[1], jax.grad(loss, argnums=(0, 1, 2))(*args),
                                    loss(*jax.tree.map(lambda a, d: a + e * d, args, v)),
                                    loss(*jax.tree.map(lambda a, d: a - e * d, args, v))))
  eps = 1e-4
  tangent, grads, ahead, behind = run(args, v, eps)
  want = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads), jax.tree.leaves(v)))
  np.testing.assert_allclose(float(jnp.real(tangent)), float(jnp.real(want)), rtol=1e-8, atol=1e-10)
  if case.check_grads:
    numeric = (float(ahead) - float(behind)) / (2 * eps)
    np.testing.assert_allclose(float(jnp.real(tangent)), numeric, rtol=1e-5, atol=1e-5)


@for_all
def test_step_rejects_bad_inputs(case):
  cell, params, carry, xs, _ = setup(case, batch_shape=(3,))
  x = xs[:, 0]
  if not case.has_step:
    with pytest.raises(ValueError, match="xs"):
      jaxrnn.unroll(cell, params, carry, x[0])  # no time axis
    return
  bad_feature = jnp.zeros(x.shape[:-1] + (x.shape[-1] + 1,), x.dtype)
  with pytest.raises(ValueError, match="x"):
    cell.step(params, carry, bad_feature)
  with pytest.raises(TypeError, match="x"):
    cell.step(params, carry, x.astype(jnp.int32))
  with pytest.raises(ValueError, match="carry"):
    cell.step(params, carry, jnp.concatenate([x, x], axis=0))  # batch 6 vs carry batch 3
  with pytest.raises(ValueError, match="xs"):
    jaxrnn.unroll(cell, params, carry, x[0])  # no time axis
