"""Hostile inputs: one table of bad calls across the public API, each raising an exception that names the argument,
the expected and the actual value; and property tests (hypothesis) of the unroll invariants over random shapes,
lengths and dtypes."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import jaxrnn
from jaxrnn import combinators as C
from jaxrnn import parallel_scan as PS

# Many tiny programs: compiled without XLA's backend optimisations (conftest.quick_compiles).
pytestmark = pytest.mark.usefixtures("quick_compiles")

K = jax.random.key(0)
F32 = jnp.float32


@functools.cache
def built(name):
  """``(cell, params, carry [B=2])`` of a small cell with input size 3 (built once)."""
  cell = {"lstm": lambda: jaxrnn.lstm(4), "gru": lambda: jaxrnn.gru(4), "rnn": lambda: jaxrnn.simple_rnn(4),
          "min_gru": lambda: jaxrnn.min_gru(4), "mlstm": lambda: jaxrnn.mlstm(4), "slstm": lambda: jaxrnn.slstm(4),
          "lru": lambda: jaxrnn.lru(4), "stack": lambda: C.stack(jaxrnn.lstm(4), jaxrnn.gru(4)),
          "residual": lambda: C.residual(jaxrnn.lstm(4)), "conv": lambda: jaxrnn.conv_lstm(3, (3, 3))}[name]()
  # Zeros of the params' shapes (eval_shape: no eager initialiser to compile); checks only read shapes and types.
  spec = jax.eval_shape(lambda k: cell.init(k, (4, 4, 2) if name == "conv" else 3), K)
  params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), spec)
  return cell, params, cell.initial_carry(params, (2, 4, 4) if name == "conv" else (2,))


def step(name, x, carry=..., params=...):
  cell, p, c = built(name)
  return cell.step(p if params is ... else params, c if carry is ... else carry, x)


def unroll(name, xs, carry=..., params=..., **kw):
  cell, p, c = built(name)
  return jaxrnn.unroll(cell, p if params is ... else params, c if carry is ... else carry, xs, **kw)


x = lambda *shape, dtype=F32: jnp.ones(shape or (2, 3), dtype)
xs = lambda *shape, dtype=F32: jnp.ones(shape or (2, 5, 3), dtype)
lstm_carry = lambda b=2, h=4, dtype=F32: jaxrnn.LSTMCarry(h=jnp.ones((b, h), dtype), c=jnp.ones((b, h), dtype))


def flax_linen_rnn(inputs, **kw):
  from jaxrnn.flax import linen
  return linen.RNN(linen.CellModule(jaxrnn.gru(4))).init(K, inputs, **kw)


def flax_nnx_rnn(inputs):
  from flax import nnx
  from jaxrnn.flax import nnx as jnnx
  return jnnx.RNN(jnnx.CellModule(jaxrnn.gru(4), 3, rngs=nnx.Rngs(0)))(inputs)


def config(raw, overrides=()):
  from jaxrnn.train import config as config_lib
  return config_lib.from_dict(raw, overrides)


def cli(*argv):
  from jaxrnn import cli as cli_lib
  return cli_lib.main(list(argv))


def cli_exit(code, *argv):
  """``cli(*argv)`` must return ``code``; raises ``SystemExit(code)`` so that the table can match it."""
  got = cli(*argv)
  if got != code:
    raise AssertionError(f"exit status {got}, expected {code}")
  raise SystemExit(code)


ConfigError = ValueError  # jaxrnn.train.config.ConfigError subclasses ValueError (imported lazily)

# (id, bad call, exception type, regex the message must match). Every message names the argument and says what
# was expected and what was given.
BAD = [
    # -- factories: sizes, names, dtypes --------------------------------------------------------------------------
    ("lstm_hidden_zero", lambda: jaxrnn.lstm(0), ValueError, r"hidden_size must be a positive int, got 0"),
    ("gru_hidden_negative", lambda: jaxrnn.gru(-3), ValueError, r"hidden_size must be a positive int, got -3"),
    ("rnn_hidden_float", lambda: jaxrnn.simple_rnn(2.5), TypeError, r"hidden_size must be a positive int, got float"),
    ("lstm_hidden_str", lambda: jaxrnn.lstm("4"), TypeError, r"hidden_size .* got str '4'"),
    ("lstm_hidden_bool", lambda: jaxrnn.lstm(True), TypeError, r"hidden_size .* got bool"),
    ("gru_hidden_none", lambda: jaxrnn.gru(None), TypeError, r"hidden_size .* got NoneType"),
    ("min_gru_hidden_zero", lambda: jaxrnn.min_gru(0), ValueError, r"hidden_size must be a positive int, got 0"),
    ("indrnn_hidden_zero", lambda: jaxrnn.indrnn(0), ValueError, r"hidden_size must be a positive int"),
    ("lstmp_proj_zero", lambda: jaxrnn.lstmp(4, 0), ValueError, r"proj_size must be a positive int, got 0"),
    ("lstm_unknown_variant", lambda: jaxrnn.lstm(4, variant="XYZ"), ValueError,
     r"unknown LSTM variant 'XYZ'; valid variants are \['vanilla', 'NIG'"),
    ("lstm_unknown_activation", lambda: jaxrnn.lstm(4, activation="tanhh"), ValueError,
     r"activation must be a callable or one of \[.*'tanh'\], got 'tanhh'"),
    ("gru_gate_activation_int", lambda: jaxrnn.gru(4, gate_activation=3), ValueError, r"gate_activation .* got 3"),
    ("lstm_dtype_int", lambda: jaxrnn.lstm(4, dtype=jnp.int32), TypeError,
     r"dtype must be a floating dtype or None, got int32"),
    ("lstm_param_dtype_complex", lambda: jaxrnn.lstm(4, param_dtype=jnp.complex64), TypeError,
     r"param_dtype must be a floating dtype or None, got complex64"),
    ("gru_param_dtype_garbage", lambda: jaxrnn.gru(4, param_dtype="foo"), TypeError, r"param_dtype .* got 'foo'"),
    ("lstm_forget_bias_without_bias", lambda: jaxrnn.lstm(4, use_bias=False, forget_bias=1.0), ValueError,
     r"forget_bias=1.0 needs a bias, but use_bias=False"),
    ("mlstm_eps_negative", lambda: jaxrnn.mlstm(4, eps=-1e-6), ValueError, r"eps must be >= 0, got -1e-06"),
    ("mlstm_eps_nan", lambda: jaxrnn.mlstm(4, eps=float("nan")), ValueError, r"eps must be finite, got nan"),
    ("mlstm_heads_do_not_divide", lambda: jaxrnn.mlstm(5, num_heads=2), ValueError,
     r"num_heads must divide hidden_size, got hidden_size=5, num_heads=2"),
    ("clockwork_no_periods", lambda: jaxrnn.clockwork_rnn(4, periods=()), TypeError,
     r"periods must be a non-empty tuple of positive ints, got \(\)"),
    ("clockwork_zero_period", lambda: jaxrnn.clockwork_rnn(4, periods=(1, 0)), ValueError,
     r"periods\[1\] must be a positive int, got 0"),
    ("conv_lstm_kernel_3d", lambda: jaxrnn.conv_lstm(3, (3, 3, 3)), ValueError,
     r"kernel_size must have 1 or 2 entries .*got 3: \(3, 3, 3\)"),
    ("depth_gated_sizes_int", lambda: jaxrnn.depth_gated_lstm(4), TypeError,
     r"hidden_sizes must be a non-empty sequence of positive ints .*got int 4"),
    # -- init / initial_carry --------------------------------------------------------------------------------------
    ("init_input_size_zero", lambda: jaxrnn.lstm(4).init(K, 0), ValueError,
     r"input_size must be a positive int, got 0"),
    ("init_input_size_negative", lambda: jaxrnn.gru(4).init(K, -2), ValueError, r"input_size .* got -2"),
    ("init_input_size_tuple_for_vector_cell", lambda: jaxrnn.lstm(4).init(K, (3, 2)), TypeError,
     r"input_size must be a positive int, got tuple \(3, 2\)"),
    ("init_key_int", lambda: jaxrnn.lstm(4).init(0, 3), TypeError, r"key must be a single PRNG key .*got int"),
    ("init_key_batch", lambda: jaxrnn.gru(4).init(jax.random.split(K, 2), 3), TypeError,
     r"key must be a single PRNG key .*shape \(2,\)"),
    ("init_key_float", lambda: jaxrnn.gru(4).init(jnp.ones(2), 3), TypeError, r"key .*dtype float"),
    ("conv_init_input_size_int", lambda: jaxrnn.conv_lstm(3, (3, 3)).init(K, 2), ValueError,
     r"input_size must be the per-example map shape \(H, W, C\) for kernel_size=\(3, 3\), got 2"),
    ("initial_carry_negative_batch", lambda: built("lstm")[0].initial_carry(built("lstm")[1], (-1,)), ValueError,
     r"batch_shape must be a tuple of non-negative ints, got \(-1,\)"),
    ("initial_carry_float_batch", lambda: built("gru")[0].initial_carry(built("gru")[1], (2.0,)), TypeError,
     r"batch_shape must be a tuple of ints, got \(2.0,\)"),
    ("initial_carry_int_dtype", lambda: built("lstm")[0].initial_carry(built("lstm")[1], (2,), dtype=jnp.int32),
     TypeError, r"dtype must be a floating dtype or None, got int32"),
    # the Flax habit initial_carry(key, shape): the params come first
    ("initial_carry_typed_key_first", lambda: jaxrnn.lstm(4).initial_carry(K, (2,)), TypeError,
     r"initial_carry takes the cell's params first: cell\.initial_carry\(params, batch_shape, dtype=None, "
     r"key=None\); got a PRNG key \(pass a key as key=\.\.\.\)"),
    ("initial_carry_raw_key_first", lambda: jaxrnn.gru(4).initial_carry(jax.random.PRNGKey(0), (2,)), TypeError,
     r"initial_carry takes the cell's params first: .*got a PRNG key \(pass a key as key=\.\.\.\)"),
    ("initial_carry_shape_first", lambda: jaxrnn.simple_rnn(4).initial_carry((2,)), TypeError,
     r"initial_carry takes the cell's params first: .*got a shape \(2,\) \(pass it as batch_shape\)"),
    ("initial_carry_int_first", lambda: jaxrnn.min_gru(4).initial_carry(2), TypeError,
     r"initial_carry takes the cell's params first: .*got a shape 2 \(pass it as batch_shape\)"),
    ("initial_carry_key_first_stack", lambda: C.stack(jaxrnn.lstm(4), jaxrnn.gru(4)).initial_carry(K, (2,)),
     TypeError, r"initial_carry takes the cell's params first: .*got a PRNG key"),
    ("initial_carry_key_first_dropout", lambda: jaxrnn.dropout(jaxrnn.lstm(4), 0.1).initial_carry(K, (2,), key=K),
     TypeError, r"initial_carry takes the cell's params first: .*got a PRNG key"),
    ("initial_carry_key_int", lambda: built("lstm")[0].initial_carry(built("lstm")[1], (2,), key=3), TypeError,
     r"key must be a single PRNG key .*got int"),
    # -- step: inputs ----------------------------------------------------------------------------------------------
    ("step_x_int", lambda: step("lstm", x(dtype=jnp.int32)), TypeError,
     r"x must be a real floating-point array, got dtype int32"),
    ("step_x_complex", lambda: step("gru", x(dtype=jnp.complex64)), TypeError,
     r"x must be a real floating-point .*complex64"),
    ("step_x_bool", lambda: step("rnn", x(dtype=jnp.bool_)), TypeError, r"x must be a real floating-point .*bool"),
    ("step_x_wrong_features", lambda: step("lstm", x(2, 4)), ValueError,
     r"x must have shape \[\*B, 3\] \(trailing feature shape \(3,\)\), got shape \(2, 4\)"),
    ("step_x_scalar", lambda: step("gru", jnp.float32(1)), ValueError,
     r"x must have shape \[\*B, 3\] .*got shape \(\)"),
    ("min_gru_x_wrong_features", lambda: step("min_gru", x(2, 7)), ValueError,
     r"x must have shape \[\*B, 3\] .*\(2, 7\)"),
    ("slstm_x_int", lambda: step("slstm", x(dtype=jnp.int32)), TypeError, r"x must be a real floating-point"),
    ("lru_x_wrong_features", lambda: step("lru", x(2, 5)), ValueError, r"x must have shape \[\*B, 3\] .*\(2, 5\)"),
    # any map size runs: x without its batch axis reads as a 2x4 map, which the [2, 4, 4] carry does not cover
    ("conv_x_missing_axis", lambda: step("conv", jnp.ones((2, 4, 2))), ValueError,
     r"carry\.h must have shape \(2, 4, 3\) .*got shape \(2, 4, 4, 3\)"),
    # -- step: carry and params -------------------------------------------------------------------------------------
    ("step_batch_mismatch", lambda: step("lstm", x(3, 3)), ValueError,
     r"carry.h must have shape \(3, 4\) \(batch shape \(3,\) of x, features \(4,\)\), got shape \(2, 4\)"),
    ("mlstm_batch_mismatch", lambda: step("mlstm", x(3, 3)), ValueError, r"carry.c must have shape \(3, 1, 4, 4\)"),
    ("step_carry_plain_tuple", lambda: step("lstm", x(), carry=tuple(built("lstm")[2])), TypeError,
     r"carry must be a LSTMCarry\('h', 'c'\) \(build it with cell.initial_carry\), got tuple"),
    ("step_carry_of_other_cell", lambda: step("lstm", x(), carry=built("gru")[2]), TypeError,
     r"carry must be a LSTMCarry.*got GRUCarry"),
    ("step_carry_wrong_hidden", lambda: step("lstm", x(), carry=lstm_carry(h=5)), ValueError,
     r"carry.h must have shape \(2, 4\) .*got shape \(2, 5\)"),
    ("step_carry_int", lambda: step("lstm", x(), carry=lstm_carry(dtype=jnp.int32)), TypeError,
     r"carry.h must be a real floating-point array, got dtype int32"),
    ("step_carry_leaves_disagree",
     lambda: step("lstm", x(), carry=jaxrnn.LSTMCarry(jnp.ones((2, 4)), jnp.ones((3, 4)))), ValueError,
     r"carry.c must have shape \(2, 4\) .*got shape \(3, 4\)"),
    ("step_params_of_other_cell", lambda: step("lstm", x(), params=built("gru")[1]), TypeError,
     r"params must be a LSTMParams\('w_i', 'w_h', 'b'\) \(build them with cell.init\), got GRUParams"),
    ("step_params_other_hidden_size", lambda: step("gru", x(), params=jaxrnn.gru(5).init(K, 3)), ValueError,
     r"params.w_h must have shape \(4, 12\), got shape \(5, 15\)"),
    ("unroll_lstmp_projection_of_other_size",  # the native path (on CPU) as the scan: both check w_r
     lambda: jaxrnn.unroll(jaxrnn.lstmp(8, 4), jaxrnn.lstmp(8, 5).init(K, 3)._replace(
         w_h=jaxrnn.lstmp(8, 4).init(K, 3).w_h), None, jnp.ones((2, 5, 3))), ValueError,
     r"params.w_r must have shape \(8, 4\), got shape \(8, 5\)"),
    ("step_params_empty_tuple", lambda: step("min_gru", x(), params=()), TypeError,
     r"params must be a MinGRUParams.*got tuple"),
    ("stack_params_wrong_length", lambda: step("stack", x(), params=built("stack")[1][:1]), TypeError,
     r"params of stack\(lstm,gru\) must be a tuple of 2 layer params, got tuple of length 1"),
    ("residual_size_mismatch", lambda: step("residual", x()), ValueError,
     r"residual\(lstm\): the output of lstm must have the input's shape .*output \(2, 4\) and x \(2, 3\)"),
    # -- unroll ------------------------------------------------------------------------------------------------------
    ("unroll_xs_rank_1", lambda: unroll("lstm", jnp.ones(3)), ValueError,
     r"xs must have shape \[\*B, T, \*F\] with 1 feature axis\(es\) and a time axis, i.e. rank >= 2, got shape \(3,\)"),
    ("unroll_xs_int", lambda: unroll("gru", xs(dtype=jnp.int32)), TypeError,
     r"xs must be a real floating-point array, got dtype int32"),
    ("unroll_xs_complex", lambda: unroll("min_gru", xs(dtype=jnp.complex64)), TypeError,
     r"xs must be a real .*complex64"),
    ("unroll_batch_mismatch", lambda: unroll("lstm", xs(3, 5, 3)), ValueError,
     r"carry.h must have shape \[\*B, \.\.\.\] with the batch shape B = \(3,\) of xs \(shape \(3, 5, 3\), layout "
     r"\[\*B, T, \*F\]\), got shape \(2, 4\)"),
    ("unroll_time_major_mismatch", lambda: unroll("gru", xs(), time_major=True), ValueError,
     r"carry.h must have shape .*B = \(5,\) of xs .*layout \[T, \*B, \*F\]\), got shape \(2, 4\)"),
    ("unroll_stack_batch_mismatch", lambda: unroll("stack", xs(3, 5, 3)), ValueError,
     r"carry\[0\].h must have shape \[\*B, \.\.\.\] with the batch shape B = \(3,\)"),
    ("unroll_wrong_features", lambda: unroll("lstm", xs(2, 5, 4)), ValueError, r"x must have shape \[\*B, 3\]"),
    ("unroll_sequence_path_wrong_features", lambda: unroll("min_gru", xs(2, 5, 4), mode="sequence"), ValueError,
     r"xs must have shape \[\*B, 3\]"),
    ("unroll_params_none", lambda: unroll("lstm", xs(), params=None), TypeError,
     r"params must be a LSTMParams.*NoneType"),
    ("unroll_carry_wrong_type", lambda: unroll("lstm", xs(), carry=jaxrnn.GRUCarry(h=jnp.ones((2, 4)))), TypeError,
     r"carry must be a LSTMCarry.*GRUCarry"),
    ("unroll_key_with_carry", lambda: unroll("lstm", xs(), key=jax.random.key(0)), ValueError,
     r"key= is for the default carry \(carry=None\)"),
    ("unroll_not_a_cell", lambda: jaxrnn.unroll(lambda *a: a, None, None, xs()), TypeError,
     r"cell must be a jaxrnn.Cell, got function"),
    ("unroll_unknown_mode", lambda: unroll("lstm", xs(), mode="fast"), ValueError,
     r"mode must be one of \('auto', 'step', 'sequence'\), got 'fast'"),
    ("unroll_sequence_mode_without_path", lambda: unroll("slstm", xs(), mode="sequence"), ValueError,
     r"mode='sequence' needs a cell with a sequence path; slstm has none"),
    ("unroll_reverse_str", lambda: unroll("lstm", xs(), reverse="yes"), TypeError,
     r"reverse must be a bool, got str 'yes'"),
    ("unroll_hoist_str", lambda: unroll("lstm", xs(), hoist="yes"), TypeError, r"hoist must be a bool, got str 'yes'"),
    ("unroll_time_major_str", lambda: unroll("gru", xs(), time_major="no"), TypeError,
     r"time_major must be a bool, got str 'no'"),
    ("unroll_remat_zero", lambda: unroll("lstm", xs(), remat=0), ValueError, r"remat must be a positive int, got 0"),
    ("unroll_remat_float", lambda: unroll("lstm", xs(), remat=1.5), TypeError,
     r"remat must be a positive int, got float"),
    ("static_unroll_batch_mismatch", lambda: jaxrnn.static_unroll(*built("lstm")[:3], xs(3, 5, 3)), ValueError,
     r"carry.h must have shape \[\*B, \.\.\.\] with the batch shape B = \(3,\)"),
    # -- seq_lengths ------------------------------------------------------------------------------------------------
    ("lengths_float", lambda: unroll("lstm", xs(), seq_lengths=jnp.array([1.0, 2.0])), TypeError,
     r"seq_lengths must be an integer array, got dtype float"),
    ("lengths_bool", lambda: unroll("gru", xs(), seq_lengths=jnp.array([True, False])), TypeError,
     r"seq_lengths must be an integer array, got dtype bool"),
    ("lengths_wrong_batch", lambda: unroll("lstm", xs(), seq_lengths=jnp.array([1, 2, 3])), ValueError,
     r"seq_lengths must have the batch shape of xs \(2,\), got shape \(3,\)"),
    ("lengths_scalar", lambda: unroll("min_gru", xs(), seq_lengths=3), ValueError,
     r"seq_lengths must have the batch shape of xs \(2,\), got shape \(\)"),
    ("lengths_too_long", lambda: unroll("lstm", xs(), seq_lengths=jnp.array([6, 2])), ValueError,
     r"seq_lengths must lie in \[0, 5\] \(the number of time steps\), got \[6\]"),
    ("lengths_negative", lambda: unroll("mlstm", xs(), seq_lengths=jnp.array([-1, 2])), ValueError,
     r"seq_lengths must lie in \[0, 5\] .*got \[-1\]"),
    ("length_mask_float", lambda: jaxrnn.length_mask(jnp.array([1.5]), 3), TypeError,
     r"seq_lengths must be an integer array, got dtype float"),
    ("reverse_valid_float_lengths", lambda: jaxrnn.reverse_valid(xs(), jnp.array([1.0, 2.0])), TypeError,
     r"seq_lengths must be an integer array"),
    # -- combinators, tbptt, parallel scans, attention -------------------------------------------------------------
    ("stack_nothing", lambda: C.stack(), ValueError, r"stack needs at least one cell, got none"),
    ("stack_list_instead_of_cells", lambda: C.stack([jaxrnn.lstm(4)]), TypeError,
     r"cells\[0\] must be a jaxrnn.Cell, got list"),
    ("bidirectional_unknown_merge", lambda: C.bidirectional(jaxrnn.lstm(4), jaxrnn.gru(4), merge="avg"), ValueError,
     r"merge must be a callable or one of \['concat', 'sum', 'mul', 'mean', None\], got 'avg'"),
    ("bidirectional_not_a_cell", lambda: C.bidirectional(jaxrnn.lstm(4), None), TypeError,
     r"bwd must be a jaxrnn.Cell, got NoneType"),
    ("dropout_rate_above_one", lambda: C.dropout(jaxrnn.lstm(4), input_rate=1.5), ValueError,
     r"input_rate must be a rate in \[0, 1\), got 1.5"),
    ("zoneout_rate_one", lambda: C.zoneout(jaxrnn.lstm(4), 1.0), ValueError,
     r"rate must be a rate in \[0, 1\), got 1.0"),
    ("variational_rate_str", lambda: C.variational_dropout(jaxrnn.lstm(4), input_rate="0.5"), TypeError,
     r"input_rate must be a real number, got str '0.5'"),
    ("dropout_rate_nan", lambda: C.dropout(jaxrnn.gru(4), output_rate=float("nan")), ValueError,
     r"output_rate must be finite, got nan"),
    ("dropout_key_int", lambda: (lambda c: c.initial_carry(c.init(K, 3), (2,), key=3))(
        C.dropout(jaxrnn.lstm(4), input_rate=0.5)), TypeError, r"key must be a single PRNG key .*got int"),
    ("projection_size_zero", lambda: C.with_projection(jaxrnn.lstm(4), 0), ValueError,
     r"output_size must be a positive int, got 0"),
    ("reset_on_not_a_cell", lambda: C.reset_on(3), TypeError, r"cell must be a jaxrnn.Cell, got int"),
    ("reset_flags_wrong_shape", lambda: C.with_reset_flags(xs(), jnp.ones((2, 4), bool)), ValueError,
     r"should_reset must have the shape of xs without its feature axis \(2, 5\), got \(2, 4\)"),
    ("bidirectional_has_no_step", lambda: (lambda c: c.step(c.init(K, 3), c.initial_carry(c.init(K, 3), (2,)), x()))(
        C.bidirectional(jaxrnn.lstm(4), jaxrnn.gru(4))), TypeError, r"bidirectional\(lstm,gru\) has no single step"),
    ("tbptt_chunk_zero", lambda: jaxrnn.truncated_unroll(*built("lstm"), xs(), 0), ValueError,
     r"chunk_size must be a positive int, got 0"),
    ("tbptt_chunk_does_not_divide", lambda: jaxrnn.truncated_unroll(*built("lstm"), xs(), 2), ValueError,
     r"chunk_size must divide the number of steps, got chunk_size=2 and T=5"),
    ("linear_recurrence_shapes", lambda: PS.linear_recurrence(jnp.ones((5, 2)), jnp.ones((5, 3)), jnp.ones(2)),
     ValueError,
     r"a and b must have the same shape \[T, \*B, \.\.\.\], got \(5, 2\) and \(5, 3\)"),
    ("linear_recurrence_h0", lambda: PS.linear_recurrence(jnp.ones((5, 2)), jnp.ones((5, 2)), jnp.ones(3)), ValueError,
     r"h0 must have shape \(2,\) \(a without its time axis\), got \(3,\)"),
    ("linear_recurrence_float_mask", lambda: PS.linear_recurrence(jnp.ones((5, 2)), jnp.ones((5, 2)), jnp.ones(2),
                                                                  mask=jnp.ones((5, 2))), TypeError,
     r"mask must be a bool array \[T, \*B\], got dtype float"),
    ("masked_softmax_float_mask", lambda: jaxrnn.masked_softmax(jnp.ones(4), jnp.ones(4)), TypeError,
     r"mask must be a bool array \[\*B, S\], got dtype float"),
    ("masked_softmax_mask_shape", lambda: jaxrnn.masked_softmax(jnp.ones(4), jnp.ones(3, bool)), ValueError,
     r"mask must have the shape of scores \(4,\) \(\[\*B, S\]\), got shape \(3,\)"),
    ("attention_size_zero", lambda: jaxrnn.additive_attention(0), ValueError,
     r"attention_size must be a positive int, got 0"),
    # -- Flax adapters ---------------------------------------------------------------------------------------------
    ("linen_cell_module_not_a_cell", lambda: __import__("jaxrnn.flax.linen").flax.linen.CellModule(cell="lstm"),
     TypeError,
     r"cell must be a jaxrnn.Cell, got str"),
    ("linen_rnn_int_inputs", lambda: flax_linen_rnn(xs(dtype=jnp.int32)), TypeError,
     r"xs must be a real floating-point array, got dtype int32"),
    ("linen_rnn_no_time_axis", lambda: flax_linen_rnn(jnp.ones(3)), ValueError,
     r"inputs must have a time axis and 1 feature axis\(es\), got shape \(3,\)"),
    ("linen_rnn_bad_lengths", lambda: flax_linen_rnn(xs(), seq_lengths=jnp.array([1, 2, 3])), ValueError,
     r"seq_lengths must have the batch shape of xs \(2,\), got shape \(3,\)"),
    ("nnx_rnn_wrong_features", lambda: flax_nnx_rnn(xs(2, 5, 4)), ValueError, r"x must have shape \[\*B, 3\]"),
    ("nnx_rnn_int_inputs", lambda: flax_nnx_rnn(xs(dtype=jnp.int32)), TypeError, r"xs must be a real floating-point"),
    ("nnx_cell_module_without_rngs", lambda: __import__("jaxrnn.flax.nnx").flax.nnx.CellModule(jaxrnn.gru(4), 3),
     ValueError, r"CellModule needs input_size and rngs \(or existing params=\.\.\.\)"),
    ("convert_missing_keys", lambda: __import__("jaxrnn.flax.convert").flax.convert.lstm_from_linen(
        {"ii": {"kernel": jnp.ones((3, 4))}}), ValueError, r"params lacks \['if', .*\] \(got keys \['ii'\]\)"),
    ("convert_not_a_mapping", lambda: __import__("jaxrnn.flax.convert").flax.convert.gru_from_linen([1, 2]), TypeError,
     r"params must be a mapping \(a Flax params dict\), got list"),
    ("convert_unknown_carry_kind", lambda: __import__("jaxrnn.flax.convert").flax.convert.carry_from_flax(
        (jnp.ones(3), jnp.ones(3)), "transformer"), ValueError,
     r"kind must be 'lstm', 'gru', 'mgu' or 'simple', got 'transformer'"),
    # -- training configs and the CLI ------------------------------------------------------------------------------
    ("config_unknown_cell", lambda: config({"model": {"cell": "lsmt"}}), ConfigError,
     r"model.cell = 'lsmt' is not valid; choices: simple_rnn, lstm, gru"),
    ("config_unknown_key", lambda: config({"train": {"stpes": 3}}), ConfigError,
     r"unknown key 'train.stpes'; valid keys:"),
    ("config_hidden_zero", lambda: config({"model": {"hidden_size": 0}}), ConfigError,
     r"model.hidden_size = 0 is too small; it must be >= 1"),
    ("config_lr_nan", lambda: config({"optimizer": {"lr": float("nan")}}), ConfigError,
     r"optimizer.lr = nan is not valid; it must be a finite number"),
    ("config_lr_inf", lambda: config({}, ["optimizer.lr=inf"]), ConfigError, r"optimizer.lr = inf is not valid"),
    ("config_steps_float", lambda: config({"train": {"steps": 10.5}}), ConfigError,
     r"train.steps must be a int, got float 10.5"),
    ("config_on_nonfinite_unknown", lambda: config({"train": {"on_nonfinite": "ignore"}}), ConfigError,
     r"train.on_nonfinite = 'ignore' is not valid; choices: stop, skip"),
    ("config_override_malformed", lambda: config({}, ["train.steps"]), ConfigError,
     r"override 'train.steps' must look like section.key=value"),
    ("cli_unknown_command", lambda: cli("fly"), SystemExit, r"^2$"),
    ("cli_bad_override_exits_2",
     lambda: cli_exit(2, "train", "--set", "model.hidden_size=-4", "--run-dir", "/nonexistent/x"),
     SystemExit, r"^2$"),
    ("cli_eval_missing_run_dir", lambda: cli_exit(2, "eval", "/nonexistent/run"), SystemExit, r"^2$"),
    ("cli_sample_length_not_int", lambda: cli("sample", "/nonexistent/run", "--length", "abc"), SystemExit, r"^2$"),
]


@pytest.mark.parametrize("call, exc, pattern", [pytest.param(*row[1:], id=row[0]) for row in BAD])
def test_bad_input_raises_clear_error(call, exc, pattern, capsys):
  with pytest.raises(exc, match=pattern):
    call()
  if exc is SystemExit:  # the CLI says why on stderr
    assert "error:" in capsys.readouterr().err


def test_table_is_large_and_ids_unique():
  ids = [row[0] for row in BAD]
  assert len(ids) == len(set(ids)) and len(ids) >= 60


# -- property tests: unroll invariants over random shapes, lengths, dtypes ----------------------------------------

CELLS = {"simple_rnn": lambda **kw: jaxrnn.simple_rnn(3, **kw), "lstm": lambda **kw: jaxrnn.lstm(3, **kw),
         "gru": lambda **kw: jaxrnn.gru(3, **kw), "min_gru": lambda **kw: jaxrnn.min_gru(3, **kw)}
TOL = {jnp.float32: 1e-5, jnp.float64: 1e-12, jnp.bfloat16: 2e-2}


@st.composite
def problems(draw):
  name = draw(st.sampled_from(sorted(CELLS)))
  dtype = draw(st.sampled_from([jnp.float32, jnp.float64, jnp.bfloat16]))
  batch = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
  T = draw(st.integers(1, 6))
  F = draw(st.integers(1, 3))
  lengths = np.array(draw(st.lists(st.integers(0, T), min_size=int(np.prod(batch)),
                                   max_size=int(np.prod(batch))))).reshape(batch).astype(np.int32)
  seed = draw(st.integers(0, 2**16))
  return name, dtype, batch, T, F, lengths, seed


def make(problem):
  name, dtype, batch, T, F, lengths, seed = problem
  cell = CELLS[name](param_dtype=dtype)
  k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
  normal = lambda k, a: (0.5 * jax.random.normal(k, a.shape, jnp.float32)).astype(a.dtype)
  params = jax.tree.map(lambda a: normal(k1, a), jax.eval_shape(lambda k: cell.init(k, F), k1))
  carry = jax.tree.map(lambda a: normal(k2, a), cell.initial_carry(params, batch))
  xs = jax.random.normal(k3, batch + (T, F), jnp.float32).astype(dtype)
  return cell, params, carry, xs, jnp.asarray(lengths)


def close(a, b, dtype, exact=False):
  for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert u.shape == v.shape and u.dtype == v.dtype
    if exact:
      np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    else:
      np.testing.assert_allclose(np.asarray(u, np.float64), np.asarray(v, np.float64), rtol=TOL[dtype], atol=TOL[dtype])


PROPS = settings(max_examples=5, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROPS
@given(problems(), st.booleans())
def test_padding_content_never_changes_results(problem, reverse):
  cell, params, carry, xs, lengths = make(problem)
  T = xs.shape[len(lengths.shape)]
  valid = jnp.moveaxis(jaxrnn.length_mask(lengths, T), 0, -1)[..., None]  # [*B, T, 1]
  garbage = jnp.where(valid, xs, jnp.full_like(xs, 1e4))
  run = jax.jit(lambda x: jaxrnn.unroll(cell, params, carry, x, seq_lengths=lengths, reverse=reverse))
  a, b = run(xs), run(garbage)
  close(a, b, problem[1], exact=True)
  assert not np.asarray(jnp.where(valid, 0, a[1])).any()  # padded outputs are zeros


@PROPS
@given(problems())
def test_reverse_equals_flip_and_jit_equals_eager(problem):
  cell, params, carry, xs, lengths = make(problem)
  t_axis = lengths.ndim
  run = lambda x, r: jaxrnn.unroll(cell, params, carry, x, reverse=r)
  rev = run(xs, True)
  fwd = jax.jit(run, static_argnums=1)(jnp.flip(xs, t_axis), False)
  close(rev, (fwd[0], jnp.flip(fwd[1], t_axis)), problem[1])  # also eager (rev) == jit (fwd)
  close(jax.jit(run, static_argnums=1)(xs, True), rev, problem[1])


@PROPS
@given(problems())
def test_vmap_equals_loop_and_batched(problem):
  cell, params, carry, xs, lengths = make(problem)
  if lengths.ndim == 0:
    carry, xs, lengths = jax.tree.map(lambda a: a[None], (carry, xs, lengths))
  flat = lambda a: a.reshape((-1,) + a.shape[lengths.ndim:])
  carry, xs, lengths = jax.tree.map(flat, carry), flat(xs), lengths.reshape(-1)
  run = lambda c, x, l: jaxrnn.unroll(cell, params, c, x, seq_lengths=l)
  vmapped = jax.vmap(run)(carry, xs, lengths)
  run_one = jax.jit(run)  # one compile for all examples
  looped = [run_one(jax.tree.map(lambda a: a[b], carry), xs[b], lengths[b]) for b in range(xs.shape[0])]
  looped = jax.tree.map(lambda *a: jnp.stack(a), *looped)
  close(vmapped, looped, problem[1])
  close(run(carry, xs, lengths), looped, problem[1])
