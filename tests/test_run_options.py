"""The run options (remat, unroll, hoist) reach every scan of every cell and combinator, and never change values.

Structure is read off the traced program (the jaxpr of ``unroll``), memory off the compiled program
(``memory_analysis``), so nothing here is timed.
"""

from __future__ import annotations

import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn.types import RunOptions
from tests import registry
from tests.jaxprs import subjaxprs

FULL_CASES = [c for c in registry.all_cases() if c.variant_of is None]
for_full = pytest.mark.parametrize("case", FULL_CASES, ids=str)


# ---------------------------------------------------------------------------------------------------------------
# Reading the traced program.


def _walk(jaxpr, in_scan=False, in_remat=False):
  """``(eqn, inside a scan body, inside a checkpoint)`` for every equation, recursively."""
  for eqn in jaxpr.eqns:
    yield eqn, in_scan, in_remat
    name = eqn.primitive.name
    for sub in subjaxprs(eqn):
      yield from _walk(sub, in_scan or name == "scan", in_remat or name in ("checkpoint", "remat", "remat2"))


def _contains(jaxpr, names):
  return any(e.primitive.name in names for e, _, _ in _walk(jaxpr))


MATMULS = ("dot_general", "conv_general_dilated")


def _program(case, num_steps, **options):
  cell, params, carry, xs, lengths = _setup(case, num_steps)
  run = lambda p, c, x, n: jaxrnn.unroll(cell, p, c, x, seq_lengths=n, **options)
  return jax.make_jaxpr(run)(params, carry, xs, lengths).jaxpr


def _grad_program(case, num_steps, **options):
  """The program of the gradient w.r.t. the inputs (``jax.checkpoint`` shows only where something is
  differentiated)."""
  cell, params, carry, xs, lengths = _setup(case, num_steps)
  run = lambda x: jnp.sum(jaxrnn.unroll(cell, params, carry, x, seq_lengths=lengths, **options)[1])
  return jax.make_jaxpr(jax.grad(run))(xs).jaxpr


def _setup(case, num_steps, batch=2):
  cell = case.make(param_dtype=jnp.float32, dtype=None)
  size = case.input_shape[0] if len(case.input_shape) == 1 else case.input_shape
  params = registry.random_params(cell, size, jax.random.key(1))
  carry = registry.random_carry(cell, params, jaxrnn.carry_batch_shape(cell, (batch,), case.input_shape),
                                jax.random.key(2))
  xs = jax.random.normal(jax.random.key(3), (batch, num_steps) + case.input_shape, jnp.float32)
  return cell, params, carry, xs, jnp.array([num_steps, num_steps - 2])


def _time_scans(jaxpr, num_steps):
  return [e for e, _, _ in _walk(jaxpr) if e.primitive.name == "scan" and e.params["length"] == num_steps]


@for_full
def test_unroll_reaches_every_time_loop(case):
  """``unroll=3``: every scan over the 7 time steps (inner cells' and combinators' too) unrolls 3 steps."""
  scans = _time_scans(_program(case, 7, unroll=3), 7)
  assert scans, "no scan over time"
  assert [e.params["unroll"] for e in scans] == [3] * len(scans)
  assert all(e.params["unroll"] == 1 for e in _time_scans(_program(case, 7), 7))


@for_full
def test_remat_reaches_every_time_loop(case):
  """``remat=True``: no loop over all 9 steps does the step's math; the steps run in checkpointed blocks of 3."""
  jaxpr = _grad_program(case, 9, remat=True)
  blocks = [e for e, _, in_remat in _walk(jaxpr) if in_remat and e.primitive.name == "scan"
            and e.params["length"] == 3]
  assert blocks, "no checkpointed block scan"
  for e in _time_scans(jaxpr, 9):  # e.g. the dropout keys of every step: key splits only
    assert not _contains(e.params["jaxpr"].jaxpr, MATMULS + ("tanh", "logistic")), e


# Cells whose programs are the same with and without hoisting, and why.
NOTHING_TO_HOIST = {
    "attention_location_lstm": "input feeding: the step's input includes the previous context",
    "zoneout_lstm_inference": "zoneout mixes carries inside the step; no input_transform",
}


def test_nothing_to_hoist_names_registry_cases():
  assert set(NOTHING_TO_HOIST) <= {c.name for c in FULL_CASES}


@for_full
def test_hoist_reaches_every_input_projection(case):
  """``hoist=True`` moves input products out of the time loops (of inner cells too), ``hoist=False`` into them."""
  def outside(jaxpr):
    return sum(e.primitive.name in MATMULS for e, in_scan, _ in _walk(jaxpr) if not in_scan)

  hoisted, in_loop = outside(_program(case, 5, hoist=True)), outside(_program(case, 5, hoist=False))
  if case.name in NOTHING_TO_HOIST:
    assert hoisted == in_loop, NOTHING_TO_HOIST[case.name]
    return
  sequence = case.make(param_dtype=jnp.float32, dtype=None).sequence
  if (sequence is not None and sequence.honours == jaxrnn.types.PARALLEL
      and jaxrnn.path_choice.choose(sequence.auto, 5, ()).forward):
    assert hoisted == in_loop  # a parallel path has no loop: its products are always outside
  else:
    assert hoisted > in_loop


@for_full
def test_options_never_change_values(case):
  """Every option together (remat blocks, unrolled loops, the other hoisting) == the default run, under jit."""
  cell, params, carry, xs, lengths = _setup(case, 7)
  hoist = not jaxrnn.sequences.default_hoist()

  @jax.jit
  def both(p, c, x, n):
    return (jaxrnn.unroll(cell, p, c, x, seq_lengths=n),
            jaxrnn.unroll(cell, p, c, x, seq_lengths=n, remat=2, unroll=3, hoist=hoist))

  want, got = both(params, carry, xs, lengths)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=case.rtol * 10, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# Memory: remat bounds the compiled memory of every combinator and nesting.


def _composites():
  lstm, gru = jaxrnn.lstm(64), jaxrnn.gru(64)
  return {
      "stack": jaxrnn.stack(lstm, lstm),
      "residual": jaxrnn.residual(jaxrnn.lstm(16)),
      "learned_initial_carry": jaxrnn.learned_initial_carry(lstm),
      "with_projection": jaxrnn.with_projection(lstm, 8),
      "with_input_transform": jaxrnn.with_input_transform(gru, 8),
      "bidirectional": jaxrnn.bidirectional(lstm, lstm),
      "dropout": jaxrnn.dropout(lstm, 0.1, 0.1),
      "stack_of_stack": jaxrnn.stack(jaxrnn.stack(lstm), gru),
      "stack_dropout": jaxrnn.stack(lstm, lstm, dropout=0.2),
      "stack_of_bidirectional": jaxrnn.stack(jaxrnn.bidirectional(lstm, gru), lstm),
      "variational_dropout": jaxrnn.variational_dropout(lstm, 0.1, 0.1),
      "zoneout": jaxrnn.zoneout(lstm, 0.1),
      "reset_on": jaxrnn.reset_on(lstm),
      "min_gru": jaxrnn.min_gru(64),
  }


@pytest.mark.usefixtures("quick_compiles_test")
@pytest.mark.parametrize("name", sorted(_composites()))
def test_remat_halves_memory_and_keeps_gradients(name):
  """B=8 T=500 F=16 H=64: ``remat=True`` needs at most half the compiled temp memory of ``remat=False``, and the
  two compiled programs give the same loss and gradients. Both run the pure-JAX scan (``native=False``): on CPU
  ``remat=False`` would otherwise take the native loop, whose residuals are not the scan's (remat does not apply
  to it).

  Issue 18's table (T=2000) is ``benchmarks/remat_memory.py``'s. Here T=500 and XLA's backend optimisations off
  (``quick_compiles_test``): compiling took most of this test's time, and the temp sizes are the same with and
  without them (measured at T=2000 for ``stack``, ``dropout``, ``stack_of_bidirectional``: 172.9 / 21.1, 100.6 /
  22.8, 240.2 / 33.9 MiB either way). At T=500 remat=True needs 0.11-0.24x of remat=False."""
  cell = _composites()[name]
  b, t, f = 8, 500, 16
  params = cell.init(jax.random.key(0), f)
  xs = 0.5 * jax.random.normal(jax.random.key(1), (b, t, f), jnp.float32)
  if cell.input_ndim != 1:
    xs = (xs, jnp.arange(b * t).reshape(b, t) % 97 == 0)

  def loss(p, x, remat):
    _, hs = jaxrnn.unroll(cell, p, None, x, options=jaxrnn.RunOptions(remat=remat, native=False),
                          key=jax.random.key(2))
    return jnp.mean(jnp.sin(hs))

  fn = jax.jit(jax.value_and_grad(loss), static_argnums=2)
  compiled = {r: fn.lower(params, xs, r).compile() for r in (False, True)}
  temp = {r: c.memory_analysis().temp_size_in_bytes for r, c in compiled.items()}
  assert temp[True] <= 0.5 * temp[False], temp
  (l0, g0), (l1, g1) = (compiled[r](params, xs) for r in (False, True))
  np.testing.assert_allclose(l1, l0, rtol=1e-5)
  for a, c in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):
    np.testing.assert_allclose(a, c, rtol=2e-4, atol=1e-7)


# ---------------------------------------------------------------------------------------------------------------
# Randomness: the same key draws the same dropout masks on every path.


@pytest.mark.usefixtures("quick_compiles_test")  # seven small gradient programs, each run once
@pytest.mark.parametrize("name", ["stack_dropout", "dropout_lstm", "dropout_bidirectional"])
def test_same_key_same_masks_on_every_path(name):
  cell = {
      "stack_dropout": jaxrnn.stack(jaxrnn.lstm(4), jaxrnn.lstm(4), dropout=0.2),
      "dropout_lstm": jaxrnn.dropout(jaxrnn.lstm(4), input_rate=0.3, output_rate=0.3),
      "dropout_bidirectional": jaxrnn.dropout(jaxrnn.bidirectional(jaxrnn.lstm(3), jaxrnn.gru(2)), 0.3, 0.3),
  }[name]
  params = cell.init(jax.random.key(0), 3)
  xs = jax.random.normal(jax.random.key(1), (3, 9, 3))
  lengths = jnp.array([9, 4, 0])

  def loss(p, x, options, mode):
    _, hs = jaxrnn.unroll(cell, p, None, x, seq_lengths=lengths, key=jax.random.key(7), options=options, mode=mode)
    return jnp.sum(hs ** 2)

  runs = [(RunOptions(), "auto"), (RunOptions(remat=True), "auto"), (RunOptions(remat=2, unroll=2), "auto"),
          (RunOptions(hoist=True), "auto"), (RunOptions(hoist=False), "auto")]
  if name != "dropout_bidirectional":  # a bidirectional layer has no step
    runs += [(RunOptions(), "step"), (RunOptions(remat=3), "step")]
  fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)), static_argnums=(2, 3))
  want = fn(params, xs, *runs[0])
  plain = jnp.sum(jaxrnn.unroll(cell, params, None, xs, seq_lengths=lengths)[1] ** 2)  # no key: no dropout
  assert not np.allclose(want[0], plain)  # the masks do something
  for options, mode in runs[1:]:
    got = fn(params, xs, options, mode)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{options} {mode}")


# ---------------------------------------------------------------------------------------------------------------
# The options themselves.


def test_run_options_checks():
  cell = jaxrnn.gru(3)
  params = cell.init(jax.random.key(0), 2)
  xs = jnp.ones((2, 5, 2))
  with pytest.raises(ValueError, match="either as options= or as keywords, not both"):
    jaxrnn.unroll(cell, params, None, xs, options=RunOptions(remat=True), unroll=2)
  with pytest.raises(ValueError, match=r"not both; .* and \['unroll'\]"):  # 1 is not the default (None) either
    jaxrnn.unroll(cell, params, None, xs, options=RunOptions(unroll=8), unroll=1)
  with pytest.raises(TypeError, match="options must be a jaxrnn.RunOptions, got dict"):
    jaxrnn.unroll(cell, params, None, xs, options={"remat": True})
  with pytest.raises(ValueError, match="unroll must be a positive int, got 0"):
    jaxrnn.unroll(cell, params, None, xs, unroll=0)
  with pytest.raises(TypeError, match="hoist must be a bool"):
    jaxrnn.unroll(cell, params, None, xs, hoist="yes")
  with pytest.raises(ValueError, match="key= is for the default carry"):
    jaxrnn.unroll(cell, params, cell.initial_carry(params, (2,)), xs, key=jax.random.key(0))
  assert RunOptions(unroll=True).set_fields() == {"unroll"} and RunOptions(unroll=1).set_fields() == set()
  assert RunOptions(unroll=1).changed_fields() == {"unroll"} and RunOptions().changed_fields() == set()
  assert jaxrnn.unroll(cell, params, None, xs, options=RunOptions(remat=2))[1].shape == (2, 5, 3)


# ---------------------------------------------------------------------------------------------------------------
# Coverage: every public factory runs through the registry (as Haiku's descriptor coverage test).

NOT_IN_REGISTRY = {}  # factory name -> why it has no registry case (none today)


def test_every_public_factory_is_in_the_registry(monkeypatch):
  factories = [n for n in jaxrnn.__all__ if callable(getattr(jaxrnn, n)) and not isinstance(getattr(jaxrnn, n), type)
               and typing.get_type_hints(getattr(jaxrnn, n)).get("return") is jaxrnn.Cell]
  called = set()
  for n in factories:
    fn = getattr(jaxrnn, n)
    monkeypatch.setattr(jaxrnn, n, lambda *a, _n=n, _fn=fn, **k: called.add(_n) or _fn(*a, **k))
  for case in registry.all_cases():
    case.make(param_dtype=jnp.float32, dtype=None)
  missing = set(factories) - called - set(NOT_IN_REGISTRY)
  assert not missing, f"public factories in no registry case (add a case or a reason): {sorted(missing)}"
  assert not set(NOT_IN_REGISTRY) & called, "listed as not in the registry but used there"


def _scan_unrolls(jaxpr):
  """The ``unroll`` of every ``scan`` in ``jaxpr``, sub-programs included."""
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "scan":
      yield eqn.params["unroll"]
    for sub in subjaxprs(eqn):
      yield from _scan_unrolls(sub)


@pytest.mark.parametrize("backend, default", [("cpu", 1), ("gpu", 8)])
@pytest.mark.parametrize("kind", ["lstm", "gru_stack", "simple_rnn", "dropout_lstm"])
def test_unroll_none_is_the_backends_default(monkeypatch, backend, default, kind):
  """``unroll=None`` (the default) runs every time loop with the backend's measured steps per iteration (8 on GPU,
  where each loop iteration costs microseconds of host time); a number asked for is what runs, 1 included."""
  monkeypatch.setattr(jax, "default_backend", lambda: backend)  # only the programs' structure is read
  cell = {"lstm": jaxrnn.lstm(4), "gru_stack": jaxrnn.stack(jaxrnn.gru(4), jaxrnn.gru(3)),
          "simple_rnn": jaxrnn.simple_rnn(4), "dropout_lstm": jaxrnn.variational_dropout(jaxrnn.lstm(4), 0.5)}[kind]
  params = cell.init(jax.random.key(0), 3)
  xs = jnp.ones((2, 16, 3))
  key = jax.random.key(1) if kind == "dropout_lstm" else None
  run = lambda p, **kw: jaxrnn.unroll(cell, p, None, xs, key=key, options=RunOptions(native=False, **kw))[1]
  unrolls = lambda **kw: set(_scan_unrolls(jax.make_jaxpr(lambda p: run(p, **kw))(params).jaxpr))
  assert jaxrnn.sequences.default_unroll() == default
  assert unrolls() == {default}
  assert unrolls(unroll=1) == {1} and unrolls(unroll=4) == {4}
  grad = jax.make_jaxpr(jax.grad(lambda p: jnp.sum(run(p))))(params)
  assert set(_scan_unrolls(grad.jaxpr)) == {default}
