"""The native CPU sequence path (jaxrnn/native, jaxrnn/cells/_native_scan.py) equals the pure-JAX path.

Values, final carries and gradients (params, initial carry, inputs) of ``RunOptions(native=True)`` (the
all-native custom_vjp) and of the default ``native=None`` (the native loops, forward mode the pure-JAX path's) against
``native=False``, within 1e-5 (float32, relative to the largest magnitude), with lengths, reverse and two batch
axes in one program per cell; stacks and bidirectional layers; the default's jax.jvp and forward-over-reverse; the
rule by which the default takes the native loop; vmap; no retrace; the refusals. Half-precision storage (bfloat16,
float16): the float32 path's results rounded once.
"""

from __future__ import annotations

import functools
import os
import pathlib
import platform
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn.cells import _native_scan
from jaxrnn.native import _paths, build
from jaxrnn.types import RunOptions
from tests.registry import randomize

pytestmark = [pytest.mark.skipif(not jaxrnn.native.available() or jax.default_backend() != "cpu",
                                 reason=f"native path off: {jaxrnn.native.status_line()}"),
              pytest.mark.usefixtures("quick_compiles")]

H = 64  # LSTM, GRU: two chunks of hidden units on a 2-core machine (the threaded split runs); simple RNN: one
F = 5
BATCH = (4, 4)
T = 7
LENGTHS = np.array([[7, 3, 0, 2], [1, 7, 5, 7], [6, 6, 6, 6], [0, 1, 2, 3]], np.int32)

CELLS = {
    "lstm": lambda: jaxrnn.lstm(H),
    "gru": lambda: jaxrnn.gru(H),
    "gru_no_bias": lambda: jaxrnn.gru(H, use_bias=False),
    "gru_reset_before": lambda: jaxrnn.gru(H, reset_after=False),
    "gru_reset_before_no_bias": lambda: jaxrnn.gru(H, reset_after=False, use_bias=False),
    "lstmp": lambda: jaxrnn.lstmp(H, 24),
    "lstmp_wide": lambda: jaxrnn.lstmp(H, 80, use_bias=False),  # a projection wider than the cell
    "simple_rnn_tanh": lambda: jaxrnn.simple_rnn(H),
    "simple_rnn_relu": lambda: jaxrnn.simple_rnn(H, activation="relu"),
    "stack_lstm_gru": lambda: jaxrnn.stack(jaxrnn.lstm(H), jaxrnn.gru(H)),
    "bidirectional_lstm": lambda: jaxrnn.bidirectional(jaxrnn.lstm(H), jaxrnn.lstm(H)),
}


# The native kinds' factories (hidden size -> cell).
FACTORIES = {"lstm": jaxrnn.lstm, "gru": jaxrnn.gru, "simple_rnn": jaxrnn.simple_rnn,
             "gru_reset_before": functools.partial(jaxrnn.gru, reset_after=False),
             "lstmp": lambda hidden: jaxrnn.lstmp(hidden, hidden // 2 + 3)}


def close(a, b, tol=1e-5):
  """Every leaf of ``a`` within ``tol`` of ``b``, relative to ``b``'s largest magnitude (at least 1)."""
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    assert x.shape == y.shape
    scale = max(1.0, float(np.abs(y).max(initial=0.0)))
    assert float(np.abs(x - y).max(initial=0.0)) <= tol * scale, (float(np.abs(x - y).max()), scale)


def inputs(cell, key=0):
  k_p, k_x, k_c = jax.random.split(jax.random.key(key), 3)
  params = randomize(cell.init(k_p, F), k_p, scale=0.1)  # recurrent kernels of spectral radius < 1: no chaos
  xs = jax.random.normal(k_x, BATCH + (T, F), jnp.float32)
  carry = cell.initial_carry(params, BATCH)
  carry = jax.tree.map(lambda a: 0.5 * jax.random.normal(k_c, a.shape, a.dtype), carry)
  return params, carry, xs


def loss_and_grads(cell, native, directions, hoist=None, round_to=None):
  """jit(value_and_grad) of a loss over runs with lengths, forward and/or reverse: (loss, (carries, hs)), grads.

  The loss is summed in float32 (params, carry and inputs may be stored in a half-precision dtype; there one run,
  as two would sum their gradients in that dtype). ``round_to``: the runs' carries and outputs are rounded to that
  dtype first (the float32 path rounded once, as the native loop's half-precision results are). Compiled without
  XLA's excess precision (by default XLA may drop a float32 -> bfloat16 -> float32 rounding, differently in two
  programs)."""

  def loss(params, carry, xs):
    opts = RunOptions(native=native, hoist=hoist)
    out = [jaxrnn.unroll(cell, params, carry, xs, seq_lengths=LENGTHS, reverse=r, options=opts) for r in directions]
    if round_to is not None:
      out = jax.tree.map(lambda a: a.astype(round_to), out)
    f32 = lambda a: a.astype(jnp.float32)
    value = sum(jnp.sum(jnp.sin(f32(hs)) * f32(hs)) + sum(jnp.sum(jnp.cos(f32(l))) for l in jax.tree.leaves(c))
                for c, hs in out)
    return value, out

  return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True),
                 compiler_options={"xla_allow_excess_precision": False})


def directions(name):
  return (False,) if name.startswith(("stack", "bidirectional")) else (False, True)  # combinators: forward


@functools.lru_cache(maxsize=None)
def reference(name):
  """The pure-JAX path's ``((value, (carries, hs)), grads)`` for ``CELLS[name]`` (computed once per module)."""
  cell = CELLS[name]()
  return loss_and_grads(cell, False, directions(name))(*inputs(cell))


@pytest.mark.parametrize("native", [True, None], ids=["native", "default"])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_native_equals_jax_path(name, native):
  """native=True (the all-native custom_vjp) and native=None (16 examples: the native forward loop and, under
  jax.grad, the native backward loop as the transpose of the default's tangent) equal the pure-JAX path."""
  cell = CELLS[name]()
  (value, outs), grads = loss_and_grads(cell, native, directions(name))(*inputs(cell))
  (ref_value, ref_outs), ref_grads = reference(name)
  close(value, ref_value)
  close(outs, ref_outs)  # final carries and outputs, forward and reverse
  close(grads, ref_grads)  # params, initial carry, inputs
  for _, hs in outs:  # padding outputs are exactly zero
    assert not np.any(np.asarray(hs)[0, 1, 3:])


@pytest.mark.parametrize("native", [True, None], ids=["native", "default"])
@pytest.mark.parametrize("name", ["lstm", "gru", "simple_rnn_tanh", "bidirectional_lstm"])
def test_hoisted_native_equals_jax_path(name, native):
  """hoist=True: the native loop gets x W_i + b of all steps from one product before the loop (its ``projected``
  mode) and equals the pure-JAX path, values and gradients, with lengths and reverse."""
  cell = CELLS[name]()
  run = loss_and_grads(cell, native, directions(name), hoist=True)
  text = str(run.trace(*inputs(cell)).jaxpr)
  assert "('projected', np.int64(1))" in text and "('projected', np.int64(0))" not in text
  (value, outs), grads = run(*inputs(cell))
  (ref_value, ref_outs), ref_grads = reference(name)
  close(value, ref_value)
  close(outs, ref_outs)
  close(grads, ref_grads)


@functools.lru_cache(maxsize=None)
def rounded_reference(name, dtype):
  """The float32 pure-JAX path's ``((value, (carries, hs)), grads)`` at the half-precision inputs upcast, outputs and
  gradients rounded to ``dtype`` (computed once for the native and the default forms)."""
  cell = CELLS[name]()
  up = jax.tree.map(lambda a: a.astype(dtype).astype(jnp.float32), inputs(cell))
  out, grads = loss_and_grads(cell, False, directions(name)[-1:], round_to=dtype)(*up)
  return out, jax.tree.map(lambda a: a.astype(dtype), grads)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("native", [True, None], ids=["native", "default"])
@pytest.mark.parametrize("name", ["lstm", "gru", "gru_reset_before", "lstmp", "simple_rnn_relu", "bidirectional_lstm"])
def test_half_precision_is_the_float32_path_rounded(name, native, dtype):
  """Params, carry and inputs stored in bfloat16 or float16 run the native loop (its FFI call is in the program) in
  float32: outputs, final carries and gradients are the float32 pure-JAX path's at the same (upcast) values,
  rounded once to the storage dtype, in the dtypes the pure-JAX path returns for these arguments. At most 1% of the
  elements differ (a float32 difference of 1e-6 may round the other way), by at most two ulps of the largest
  magnitude; the pure-JAX path in the storage dtype, which rounds every step, differs in 15-77% of them."""
  cell, dtype = CELLS[name](), jnp.dtype(dtype)
  half = jax.tree.map(lambda a: a.astype(dtype), inputs(cell))
  one = directions(name)[-1:]  # one run: cells reverse, combinators forward
  run = loss_and_grads(cell, native, one)
  assert jaxrnn.native.FORWARD in str(run.trace(*half).jaxpr)
  (value, outs), grads = run(*half)
  (ref_value, ref_outs), ref_grads = rounded_reference(name, dtype)
  dtypes = lambda tree: [l.dtype for l in jax.tree.leaves(tree)]
  assert dtypes(((value, outs), grads)) == dtypes(jax.eval_shape(loss_and_grads(cell, False, one), *half))
  assert set(dtypes(outs)) == {dtype} and dtypes(grads) == dtypes(half)
  for got, want in ((outs, ref_outs), (grads, ref_grads)):
    close(got, want, 2 * float(jnp.finfo(dtype).eps))
    differ = sum(int(np.sum(np.asarray(a, np.float64) != np.asarray(b, np.float64)))
                 for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)))
    assert differ <= 0.01 * sum(l.size for l in jax.tree.leaves(want)), differ
  close(value, ref_value, 1e-4)  # the float32 loss of (nearly) the same rounded outputs


HALF_COMPUTE = {
    "lstm": lambda dtype: jaxrnn.lstm(H, dtype=dtype),
    "gru": lambda dtype: jaxrnn.gru(H, dtype=dtype),
    "simple_rnn_relu": lambda dtype: jaxrnn.simple_rnn(H, activation="relu", dtype=dtype),
    "bidirectional_lstm": lambda dtype: jaxrnn.bidirectional(jaxrnn.lstm(H, dtype=dtype), jaxrnn.lstm(H, dtype=dtype)),
}


@functools.lru_cache(maxsize=None)
def half_compute_outputs(name, dtype):
  """The pure-JAX path's ``(carries, hs)`` for ``HALF_COMPUTE[name](dtype)`` (computed in that dtype)."""
  cell = HALF_COMPUTE[name](dtype)
  return loss_and_grads(cell, False, directions(name))(*inputs(cell))[0][1]


@pytest.mark.parametrize("hoist", [None, True], ids=["hoist_default", "hoisted"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("name", sorted(HALF_COMPUTE))
def test_half_compute_dtype_runs_the_float32_loop(name, dtype, hoist):
  """A cell with a half compute dtype (float32 params, carry and inputs; ``dtype=bfloat16`` products: mixed
  precision) runs the native loop in float32 (its FFI call is in the program): values, final carries and gradients
  equal the float32 pure-JAX path's to float32's tolerance, hoisted projection too (the cell's own input_transform
  would round it to the compute dtype). The pure-JAX path in that compute dtype differs by 1e-3 to 1e-2."""
  cell = HALF_COMPUTE[name](jnp.dtype(dtype))
  run = loss_and_grads(cell, None, directions(name), hoist=hoist)
  assert jaxrnn.native.FORWARD in str(run.trace(*inputs(cell)).jaxpr)
  (value, outs), grads = run(*inputs(cell))
  (ref_value, ref_outs), ref_grads = reference(name)
  close(value, ref_value)
  close(outs, ref_outs)
  close(grads, ref_grads)
  with pytest.raises(AssertionError):
    close(half_compute_outputs(name, jnp.dtype(dtype)), ref_outs, 1e-4)


def test_half_precision_inputs_with_float32_params():
  """Inputs (and so the carry) in bfloat16 with float32 params: the native results take the dtypes the pure-JAX path
  gives, and its values to bfloat16's rounding."""
  cell = jaxrnn.lstm(H)
  params, carry, xs = inputs(cell)
  carry, xs = jax.tree.map(lambda a: a.astype(jnp.bfloat16), (carry, xs))
  run = lambda native: jaxrnn.unroll(cell, params, carry, xs, seq_lengths=LENGTHS, options=RunOptions(native=native))
  got, pure = run(True), run(False)
  assert [l.dtype for l in jax.tree.leaves(got)] == [l.dtype for l in jax.tree.leaves(pure)]
  close(got, pure, tol=0.05)  # the pure-JAX path rounds every step to bfloat16


@pytest.mark.parametrize("name", ["lstm", "gru", "gru_reset_before", "lstmp"])
def test_one_example_equals_jax_path(name):
  """One example per step at H=128 (W3's form: the input projection hoisted by default, each step's
  matrix-vector product split over two threads where the pool has two): values and gradients equal the pure-JAX
  path's."""
  cell = FACTORIES[name](128)
  params = randomize(cell.init(jax.random.key(0), F), jax.random.key(1), scale=0.1)
  xs = jax.random.normal(jax.random.key(2), (1, 50, F), jnp.float32)

  def loss(params, xs, native):
    carry, hs = jaxrnn.unroll(cell, params, None, xs, seq_lengths=jnp.array([41]), options=RunOptions(native=native))
    return jnp.sum(jnp.sin(hs) * hs) + jnp.sum(carry.h), hs

  run = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True), static_argnums=2)
  assert "('projected', np.int64(1))" in str(jax.make_jaxpr(run, static_argnums=2)(params, xs, True))
  want = run(params, xs, False)
  close(run(params, xs, True), want)
  close(run(params, xs, None), want)  # the default: the native loops, forward and backward
  d_params, d_xs = tangents_like((params, xs), 5)
  jvp = jax.jit(lambda native: jax.jvp(lambda p, x: loss(p, x, native), (params, xs), (d_params, d_xs)),
                static_argnums=0)
  close(jvp(None), jvp(False))


@pytest.mark.parametrize("name", ["lstm", "gru", "gru_reset_before", "lstmp"])
def test_deep_products_equal_jax_path(name):
  """Deeper products than the other cases: 300 input features (the forward's input product, inside the loop) and
  G H = 320 (LSTM) or 240 (GRU) for the backward's dz W_h^T, with lengths; values and gradients."""
  cell = FACTORIES[name](80)
  params = randomize(cell.init(jax.random.key(0), 300), jax.random.key(1), scale=0.1)
  xs = jax.random.normal(jax.random.key(2), (6, 5, 300), jnp.float32)

  def loss(params, xs, native):
    carry, hs = jaxrnn.unroll(cell, params, None, xs, seq_lengths=jnp.array([5, 3, 0, 5, 1, 4]),
                              options=RunOptions(native=native, hoist=False))
    return jnp.sum(jnp.sin(hs) * hs) + jnp.sum(carry.h), hs

  run = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True), static_argnums=2)
  close(run(params, xs, True), run(params, xs, False))


@pytest.mark.parametrize("name", ["simple_rnn_tanh", "simple_rnn_relu"])
def test_simple_rnn_default_keeps_forward_mode(name):
  """One example: the simple RNN's default runs its native forward loop undifferentiated, and differentiates with
  the native backward loop in reverse mode and as the pure-JAX path in forward mode (native_derivative): jax.grad,
  jax.jvp and a Hessian wrt the inputs equal the pure-JAX path's (the all-native custom_vjp has no forward mode,
  so jax.jvp and jax.hessian raise there). unroll is a nested jit here, which stages the native backward's
  custom_jvp under vmap: before its rule returned the native primal, the Hessian raised "Expected cotangent type
  float32[1,7,3] but got float32[1,1,3]" (the batch axis of d_xs taken for T)."""
  cell = CELLS[name]()
  params = randomize(cell.init(jax.random.key(0), F), jax.random.key(1), scale=0.3)
  xs = jax.random.normal(jax.random.key(2), (1, T, F), jnp.float32)
  lengths = jnp.array([5])
  out = lambda p, x, native: jaxrnn.unroll(cell, p, None, x, seq_lengths=lengths, options=RunOptions(native=native))
  loss = lambda p, x, native: jnp.sum(jnp.sin(out(p, x, native)[1])) + jnp.sum(out(p, x, native)[0].h ** 2)
  assert jaxrnn.native.FORWARD in str(jax.make_jaxpr(lambda p: out(p, xs, None))(params))
  d_params, d_xs = tangents_like((params, xs), 3)

  @functools.partial(jax.jit, static_argnums=0)
  def everything(native):
    return (out(params, xs, native), jax.grad(loss, argnums=(0, 1))(params, xs, native),
            jax.jvp(lambda p, x: loss(p, x, native), (params, xs), (d_params, d_xs)),
            jax.hessian(lambda x: loss(params, x, native))(xs))

  close(everything(None), everything(False))


def tangents_like(tree, key):
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(jax.random.key(key), len(leaves))
  return jax.tree.unflatten(treedef, [jax.random.normal(k, l.shape, l.dtype) for k, l in zip(keys, leaves)])


@pytest.mark.parametrize("name", ["lstm", "gru", "gru_reset_before", "lstmp", "bidirectional_lstm"])
def test_default_jvp_equals_jax_path(name):
  """jax.jvp under the default (16 examples) equals the pure-JAX path's: outputs and final carries and their
  tangents wrt params, initial carry and inputs, with lengths and reverse. The LSTM differentiates at the native
  forward loop (keeping the backward's residuals) and the pure-JAX path's tangent, never the native backward."""
  cell = CELLS[name]()
  args = inputs(cell)
  d_args = tangents_like(args, 7)

  def run(native):
    def f(params, carry, xs):
      opts = RunOptions(native=native)
      return [jaxrnn.unroll(cell, params, carry, xs, seq_lengths=LENGTHS, reverse=r, options=opts)
              for r in directions(name)]
    return jax.jit(lambda a, d: jax.jvp(f, a, d))

  text = str(jax.make_jaxpr(run(None))(args, d_args))
  assert jaxrnn.native.FORWARD in text and jaxrnn.native.BACKWARD not in text
  close(run(None)(args, d_args), run(False)(args, d_args))


@pytest.mark.parametrize("name", ["lstm", "gru", "gru_reset_before", "lstmp"])
def test_default_forward_over_reverse(name):
  """Hessian-vector products (jax.jvp of jax.grad) through the default path, with lengths: the native forward
  loop's custom_jvp differentiates again (the forward keeping the residuals is a custom_jvp too, and the native
  backward's rule is the pure-JAX path's vjp)."""
  cell = CELLS[name]()
  params, carry, xs = inputs(cell)
  d_params = tangents_like(params, 3)

  def hvp(native):
    def loss(params):
      _, hs = jaxrnn.unroll(cell, params, carry, xs, seq_lengths=LENGTHS, options=RunOptions(native=native))
      return jnp.sum(jnp.sin(hs) * hs)
    return jax.jit(lambda p, d: jax.jvp(jax.grad(loss), (p,), (d,)))

  text = str(jax.make_jaxpr(hvp(None))(params, d_params))
  assert jaxrnn.native.FORWARD in text
  close(hvp(None)(params, d_params), hvp(False)(params, d_params))


@pytest.mark.parametrize("name", ["lstm", "gru", "gru_reset_before", "lstmp"])
def test_default_transforms_compose(name):
  """The default's tangent primitive under the other transformations, against the pure-JAX path: vmap of grad (its
  batching rule), reverse over reverse (the native backward's own derivative is the pure-JAX path's) and
  jax.linear_transpose of its jvp (the transpose rule alone), with lengths."""
  cell = CELLS[name]()
  params, carry, xs = inputs(cell)
  one_carry = jax.tree.map(lambda a: a[0], carry)  # vmapped over the first batch axis

  def loss(native):
    def f(params, xs):
      final, hs = jaxrnn.unroll(cell, params, one_carry, xs, seq_lengths=jnp.array([5, 3, 0, 7]),
                                options=RunOptions(native=native))
      return jnp.sum(jnp.sin(hs) * hs) + jnp.sum(final.h ** 2)
    return f

  def everything(native):
    f = loss(native)
    x0 = xs[0]
    vmap_grad = jax.vmap(jax.grad(f, argnums=(0, 1)), in_axes=(None, 0))(params, xs)
    rev_rev = jax.jacrev(jax.grad(lambda scale: f(params, scale * x0)))(jnp.float32(1.0))
    _, jvp_x = jax.linearize(lambda x: f(params, x), x0)
    transposed = jax.linear_transpose(jvp_x, x0)(jnp.float32(1.0))
    return vmap_grad, rev_rev, transposed

  text = str(jax.make_jaxpr(lambda: everything(None))())
  assert jaxrnn.native.BACKWARD in text
  close(jax.jit(lambda: everything(None))(), jax.jit(lambda: everything(False))())


@pytest.mark.parametrize("name", ["lstm", "gru", "gru_reset_before", "lstmp", "simple_rnn_tanh"])
def test_saturated_gates_equal_jax_path(name):
  """Pre-activations of hundreds (inputs of scale 2000): exp overflows to inf inside the gates, which must saturate
  to 0 / 1 as in the pure-JAX path (compiled with finite-math-only they became NaN). Small recurrent weights: no
  chaos to amplify rounding."""
  cell = CELLS[name]()
  params = randomize(cell.init(jax.random.key(0), F), jax.random.key(1), scale=0.1)
  xs = 2000.0 * jax.random.normal(jax.random.key(2), (1, 40, F), jnp.float32)
  run = jax.jit(lambda p, x, native: jaxrnn.unroll(cell, p, None, x, options=RunOptions(native=native)),
                static_argnums=2)
  got, want = run(params, xs, True), run(params, xs, False)
  assert all(bool(jnp.all(jnp.isfinite(l))) for l in jax.tree.leaves(got))
  close(got, want, tol=1e-4)  # float32 rounding of pre-activations of ~500: ~500 * 6e-8 = 3e-5


def test_native_runs():
  """The native path really runs (its FFI call is in the program): with native=True and with native=None, for one
  example and for many; never with native=False; under jax.grad the native backward loop with both."""
  cell = jaxrnn.lstm(H)
  params, carry, xs = inputs(cell)
  text = lambda native, xs, carry: str(jax.make_jaxpr(lambda p: jaxrnn.unroll(
      cell, p, carry, xs, options=RunOptions(native=native)))(params))
  one, one_carry = xs[0, :1], jax.tree.map(lambda a: a[0, :1], carry)  # one example per step
  assert jaxrnn.native.FORWARD in text(True, xs, carry)
  assert jaxrnn.native.FORWARD in text(None, one, one_carry)
  assert jaxrnn.native.FORWARD in text(None, xs, carry)
  assert jaxrnn.native.FORWARD not in text(False, one, one_carry)
  grad_text = lambda native: str(jax.make_jaxpr(jax.grad(lambda p: jnp.sum(jaxrnn.unroll(
      cell, p, carry, xs, options=RunOptions(native=native))[1])))(params))
  assert jaxrnn.native.BACKWARD in grad_text(True)
  default = grad_text(None)  # the default's tangent, transposed: the native backward loop
  assert jaxrnn.native.FORWARD in default and jaxrnn.native.BACKWARD in default
  # The input projection before the loop (hoist) where RunOptions.hoist says, and by default up to HOIST_MAX_ROWS
  # examples (matrix-vector products inside the loop are slower than one product before it).
  rows, row_carry = xs.reshape((-1,) + xs.shape[-2:]), jax.tree.map(lambda a: a.reshape(-1, a.shape[-1]), carry)
  projected = lambda n, hoist: "('projected', np.int64(1))" in str(jax.make_jaxpr(lambda p: jaxrnn.unroll(
      cell, p, jax.tree.map(lambda a: a[:n], row_carry), rows[:n], options=RunOptions(hoist=hoist)))(params))
  assert projected(_native_scan.HOIST_MAX_ROWS, None) and not projected(_native_scan.HOIST_MAX_ROWS + 1, None)
  assert projected(1, True) and projected(4, True) and not projected(1, False)


def _copies(compiled_text):
  """The shapes of the transposes and copies in a compiled program (fusions' bodies included)."""
  found = re.findall(r"= \w+\[([\d,]*)\]\{[\d,]*\} (?:transpose|copy)\(", compiled_text)
  return [tuple(int(d) for d in shape.split(",") if d) for shape in found]


@pytest.mark.parametrize("name", ["lstm", "gru", "stack_lstm_gru"])
def test_batch_major_sequences_are_not_transposed(name):
  """The loops read and write sequences batch-major, unroll's default layout: XLA cancels unroll's transposes
  against the native wrapper's (a stack's between its layers too), so neither an inference program nor a training
  one copies a sequence (inputs, outputs, their cotangents). Time-major sequences are transposed instead."""
  cell = CELLS[name]()
  params, carry, xs = inputs(cell)
  run = lambda p, x, time_major=False: jaxrnn.unroll(cell, p, carry, x, seq_lengths=LENGTHS, time_major=time_major)
  infer = jax.jit(lambda p, x: run(p, x)[1]).lower(params, xs).compile().as_text()
  assert _copies(infer) == [], _copies(infer)
  train = jax.jit(jax.grad(lambda p, x: jnp.sum(run(p, x)[1] ** 2), argnums=(0, 1))).lower(params, xs)
  assert [shape for shape in _copies(train.compile().as_text()) if len(shape) >= 3] == []
  xs_tm = jnp.moveaxis(xs, -2, 0)
  time_major = jax.jit(lambda p, x: run(p, x, True)[1]).lower(params, xs_tm).compile().as_text()
  assert [shape for shape in _copies(time_major) if len(shape) >= 3], _copies(time_major)


@pytest.mark.parametrize("name, batch, features, hidden, native, dtype", [
    ("lstm", 64, 128, 128, True, "float32"),  # W2 of benchmarks/rnn_layers.py
    ("lstm", 1, 64, 128, True, "float32"),  # W3
    ("lstm", 128, 512, 512, True, "float32"),  # W4: 2^28 multiply-adds per step, the largest size it takes
    ("lstm", 256, 512, 512, False, "float32"),  # above: not measured
    ("gru", 64, 128, 128, True, "float32"),
    ("gru", 1, 64, 128, True, "float32"),  # W3: with the projection hoisted and the step split over two threads
    ("gru", 128, 512, 512, True, "float32"),  # W4
    ("gru_reset_before", 32, 128, 256, True, "float32"),
    ("gru_reset_before", 128, 512, 512, True, "float32"),
    ("gru_reset_before", 512, 1024, 512, False, "float32"),
    ("lstmp", 32, 128, 256, True, "float32"),  # P = 131
    ("lstmp", 256, 1024, 512, False, "float32"),  # 2^28 and more: (1024 + 259) 2048 + 512 259 per example
    ("simple_rnn", 128, 512, 512, True, "float32"),  # W4
    ("simple_rnn", 512, 1024, 512, False, "float32"),  # above 2^28
    ("lstm", 256, 512, 512, True, "bfloat16"),  # params and inputs stored in bfloat16: at every size
    ("gru", 512, 1024, 512, True, "bfloat16"),
    ("lstm", 128, 512, 512, True, "float16"),  # in float16: as in float32
    ("lstm", 256, 512, 512, False, "float16"),
])
def test_default_rule(name, batch, features, hidden, native, dtype):
  """native=None takes the native loop (its FFI call is in the program) where it was measured faster, and the
  pure-JAX path elsewhere (jaxrnn.cells._native_scan.AUTO; params and inputs stored in ``dtype``); traced only,
  nothing runs."""
  cell = FACTORIES[name](hidden)
  params = jax.eval_shape(lambda k: jax.tree.map(lambda a: a.astype(dtype), cell.init(k, features)),
                          jax.random.key(0))
  xs = jax.ShapeDtypeStruct((batch, 3, features), dtype)
  text = str(jax.make_jaxpr(lambda p, x: jaxrnn.unroll(cell, p, None, x))(params, xs))
  assert (jaxrnn.native.FORWARD in text) == native


@pytest.mark.parametrize("name", ["lstm", "lstmp"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_vmap_and_no_retrace(dtype, name):
  """vmap over both batch axes (one native call per example: B=1, the matrix-vector form), with gradients; bfloat16
  (the float32 loop inside) against the pure-JAX path in float32 at the same values."""
  cell = CELLS[name]()
  params, carry, xs = jax.tree.map(lambda a: a.astype(dtype), inputs(cell))
  traces = []

  def make(native):
    def loss(params, xs):
      traces.append(native)
      one = lambda x: jaxrnn.unroll(cell, params, None, x, options=RunOptions(native=native))[1]
      hs = jax.vmap(jax.vmap(one))(xs).astype(jnp.float32)
      return jnp.sum(jnp.sin(hs)), hs
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))

  f, ref = make(None), make(False)
  up = lambda tree: jax.tree.map(lambda a: a.astype(jnp.float32), tree)
  tol = 1e-5 if dtype == "float32" else 2 * float(jnp.finfo(dtype).eps)
  for x in (xs, xs + 1.0):
    (value, hs), grads = f(params, x)
    assert [l.dtype for l in jax.tree.leaves(grads)] == [l.dtype for l in jax.tree.leaves((params, x))]
    (ref_value, ref_hs), ref_grads = ref(up(params), up(x))
    close(hs, ref_hs, tol)
    close(grads, ref_grads, tol)
    close(value, ref_value, 1e-4 if dtype == "float32" else 1e-2)  # a sum of 7168 rounded terms
  assert traces.count(None) == 1


def test_refusals():
  cell = jaxrnn.lstm(H)
  params, carry, xs = inputs(cell)
  need = RunOptions(native=True)
  run = lambda cell, params, xs, options: jax.eval_shape(
      lambda p, x: jaxrnn.unroll(cell, p, None, x, options=options), params, xs)
  with pytest.raises(ValueError, match=r"native CPU path cannot run this call: dtypes \['float64'\]; the native loop "
                     r"runs float32 \(params, carry and inputs stored in bfloat16 or float16 are computed in float32"):
    run(cell, params, xs.astype(jnp.float64), need)
  with pytest.raises(ValueError, match="cannot run this call: run options"):
    run(cell, params, xs, need._replace(unroll=2))
  with pytest.raises(ValueError, match="cannot run this call: run options"):  # True == 1, but it unrolls all steps
    run(cell, params, xs, need._replace(unroll=True))
  run(cell, params, xs, need._replace(unroll=1))  # one step per iteration: what the native loop does
  with pytest.raises(ValueError, match="custom activation"):
    run(jaxrnn.lstm(H, activation=jnp.tanh), params, xs, need)
  with pytest.raises(ValueError, match="needs a sequence path with a native form"):
    run(jaxrnn.mgu(H), jaxrnn.mgu(H).init(jax.random.key(0), F), xs, need)
  with pytest.raises(TypeError, match="native must be a bool"):
    run(cell, params, xs, RunOptions(native="yes"))
  # native=False on a cell without a native form changes nothing (the path mode='auto' picks for it runs).
  lru = jaxrnn.lru(8)
  lp = lru.init(jax.random.key(0), F)
  program = lambda options: str(jax.make_jaxpr(lambda p: jaxrnn.unroll(lru, p, None, xs, options=options))(lp))
  assert program(RunOptions(native=False)) == program(RunOptions())


def test_built_in_ci():
  """CI installs with `make`, which builds the library: there the native path must be on."""
  if os.environ.get("CI"):
    assert jaxrnn.native.available(), jaxrnn.native.reason()


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize("batch, hidden", [(29, 40), (25, 41), (30, 41), (31, 40), (61, 40), (51, 41)])
def test_row_blocks_and_padded_panels(name, batch, hidden):
  """Every shape the step products' micro-kernels take apart: a block of 24 rows (tiles of 6 rows, of 8 for the
  AVX-512 panel pairs), then 5, 1, 6 or 7 rows (29, 25, 30 or 31 examples on one thread); on two threads the loops
  split the rows instead (rnn.cc's Split): 14 + 15, 12 + 13, 15 + 15, 15 + 16 rows, and 30 + 31 or 25 + 26 (61,
  51: a block of 24, then 6, 7, 1 or 2 rows a chunk); 40 or 41 hidden units, so chunks whose columns fill an odd
  number of 16-column panels (the last one alone where the panels go in pairs, as with AVX-512), columns past the
  chunk's padded, and with 41 an odd depth G H in the backward's ``dz W_h^T`` (GRU, simple RNN); 3 features, an odd
  depth in the forward. Values and gradients equal the pure-JAX path, with lengths."""
  native_equals_pure(FACTORIES[name](hidden), batch, steps=6, features=3)


def native_equals_pure(cell, batch, steps, features):
  """Values and gradients (params, inputs) of native=True equal native=False's, with lengths 0 .. steps."""
  params = randomize(cell.init(jax.random.key(0), features), jax.random.key(1), scale=0.1)
  xs = jax.random.normal(jax.random.key(2), (batch, steps, features), jnp.float32)
  lengths = jnp.arange(batch, dtype=jnp.int32) % (steps + 1)

  def loss(params, xs, native):
    carry, hs = jaxrnn.unroll(cell, params, None, xs, seq_lengths=lengths, options=RunOptions(native=native))
    return jnp.sum(jnp.sin(hs) * hs) + sum(jnp.sum(jnp.cos(l)) for l in jax.tree.leaves(carry)), (carry, hs)

  run = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True), static_argnums=2)
  close(run(params, xs, True), run(params, xs, False))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_wide_row_blocks(name):
  """Weights too large for half a core's L2 (F=H=640: 1.6 MiB a chunk for the simple RNN, more for the others, on
  machines with up to 2 MiB of L2) run the products in blocks of 132 rows (rnn.cc's row_block): 139 examples are a
  wide block, then a micro-tile of 6 and one row. Values and gradients equal the pure-JAX path, with lengths."""
  native_equals_pure(FACTORIES[name](640), batch=139, steps=3, features=640)


def small_case(name, batch=5, steps=7, features=3, hidden=20):
  """``(params, carry, xs, loss)`` of a small run of ``FACTORIES[name]``: ``loss(params, carry, xs, native)`` over
  runs forward and reverse with lengths 7, 0, 3, 6, 1, with their values."""
  cell = FACTORIES[name](hidden)
  params = randomize(cell.init(jax.random.key(0), features), jax.random.key(1), scale=0.1)
  xs = jax.random.normal(jax.random.key(2), (batch, steps, features), jnp.float32)
  carry = jax.tree.map(lambda a: 0.5 * jax.random.normal(jax.random.key(3), a.shape, a.dtype),
                       cell.initial_carry(params, (batch,)))
  lengths = jnp.array([7, 0, 3, 6, 1], jnp.int32)

  def loss(params, carry, xs, native):
    opts = RunOptions(native=native)
    out = [jaxrnn.unroll(cell, params, carry, xs, seq_lengths=lengths, reverse=r, options=opts) for r in (False, True)]
    value = sum(jnp.sum(jnp.sin(hs) * hs) + sum(jnp.sum(jnp.cos(l)) for l in jax.tree.leaves(c)) for c, hs in out)
    return value, out

  return params, carry, xs, loss


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_backward_in_blocks_of_steps(name, monkeypatch):
  """The backward keeping dz for a few steps at a time (_native_scan.DZ_BLOCK_BYTES: blocks of 3 steps of 7, the
  first block the last single step) equals the pure-JAX path: values and gradients of params, initial carry and
  inputs, with lengths, forward and reverse."""
  monkeypatch.setattr(_native_scan, "DZ_BLOCK_BYTES", 3 * 4 * 5 * _native_scan.GATES[name] * 20)
  assert _native_scan.dz_steps(7, 5, _native_scan.GATES[name] * 20) == 3
  params, carry, xs, loss = small_case(name)
  run = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True), static_argnums=3)
  close(run(params, carry, xs, True), run(params, carry, xs, False))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_gradients_without_the_inputs_skip_dx(name):
  """jax.grad of the default path with respect to params and initial carry only: the native backward is asked for no
  dx (its result has size 0 in the lowered program) and the gradients equal the pure-JAX path's; with respect to the
  inputs too, it computes dx."""
  params, carry, xs, loss = small_case(name)
  value = lambda *args: loss(*args)[0]
  for argnums, with_dx in (((0, 1), False), ((0, 1, 2), True)):
    grad = jax.jit(jax.grad(value, argnums=argnums), static_argnums=3)
    close(grad(params, carry, xs, None), grad(params, carry, xs, False))
    text = grad.lower(params, carry, xs, None).as_text()
    calls = [line for line in text.splitlines() if "@jaxrnn_rnn_backward" in line]
    assert len(calls) == 2, calls  # forward and reverse
    assert all(("tensor<0x7x3xf32>" not in line) == with_dx for line in calls), calls


KERNEL_PARITY = """
import pathlib, sys
from jaxrnn.native import _paths
_paths.find_library = lambda: pathlib.Path(sys.argv[1])  # this process loads that build
import jax, jax.numpy as jnp, numpy as np, jaxrnn
from jaxrnn.types import RunOptions
assert jaxrnn.native.available() and sys.argv[1] in jaxrnn.native.reason(), jaxrnn.native.reason()
assert f"step kernels: {sys.argv[2]};" in jaxrnn.native.reason(), jaxrnn.native.reason()
xs = jax.random.normal(jax.random.key(2), (25, 7, 3), jnp.float32)  # 25 rows: micro-tiles of 6, then one of 1
lengths = jnp.arange(25, dtype=jnp.int32) % 8
for cell in (jaxrnn.lstm(40), jaxrnn.gru(40), jaxrnn.gru(40, reset_after=False), jaxrnn.simple_rnn(40),
             jaxrnn.lstmp(40, 23)):
  params = cell.init(jax.random.key(0), 3)
  def loss(params, xs, native):
    carry, hs = jaxrnn.unroll(cell, params, None, xs, seq_lengths=lengths, options=RunOptions(native=native))
    return jnp.sum(jnp.sin(hs) * hs) + sum(jnp.sum(jnp.cos(l)) for l in jax.tree.leaves(carry)), (carry, hs)
  run = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True), static_argnums=2)
  want = jax.tree.leaves(run(params, xs, False))
  for native in (True, None):
    for a, b in zip(jax.tree.leaves(run(params, xs, native)), want):
      err = float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max(initial=0.0))
      assert err <= 1e-5 * max(1.0, float(np.abs(np.asarray(b)).max(initial=0.0))), (cell.name, native, err)
print("kernel: parity ok")
"""


def _cpu_flags() -> set:
  try:
    text = pathlib.Path("/proc/cpuinfo").read_text()
  except OSError:
    return set()
  return set(next((l.split(":", 1)[1].split() for l in text.splitlines() if l.startswith("flags")), []))


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("JAXRNN_SLOW") != "1", reason="builds a second library: set JAXRNN_SLOW=1")
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the builds are x86-64's")
@pytest.mark.parametrize("march, needs, kernels", [("x86-64", set(), "portable C++"),
                                                   ("haswell", {"avx2", "fma"}, "AVX2 + FMA"),
                                                   ("skylake-avx512", {"avx2", "fma", "avx512f"}, "AVX-512")])
def test_each_kernel_equals_jax_path(tmp_path, march, needs, kernels):
  """rnn.cc built for another instruction set than this machine's ``-march=native`` (``x86-64``: the plain C++
  micro-kernels; ``haswell``: the AVX2 + FMA ones; ``skylake-avx512``: the AVX-512 ones, where the CPU has them)
  equals the pure-JAX path: values and gradients of lstm, gru and simple_rnn, with lengths, for native=True and
  native=None, in a process that loads that build (and says which kernels it runs)."""
  if not needs <= _cpu_flags():
    pytest.skip(f"this CPU lacks {sorted(needs - _cpu_flags())}")
  flags = [f"-march={march}" if f.startswith("-march=") else f for f in _paths.COMPILE_FLAGS]
  lib = tmp_path / f"jaxrnn_native-{march}.so"
  build.compile_library(lib, flags)
  root = pathlib.Path(jaxrnn.__file__).parent.parent
  done = subprocess.run([sys.executable, "-c", KERNEL_PARITY, str(lib), kernels], cwd=root, capture_output=True,
                        text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-4000:]
  assert "parity ok" in done.stdout
