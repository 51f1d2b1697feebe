"""Combinator cases (stack, residual, reset_on, learned initial carry, projections, zoneout at inference,
bidirectional) with float64 NumPy references built from the core cells' reference steps."""

import jax.numpy as jnp
import numpy as np

import jaxrnn
from tests.cases.core import ref_gru, ref_lstm
from tests.registry import CellCase

ref_gru_after = ref_gru(reset_after=True)


def ref_stack(p, c, x):
  c0, h0 = ref_lstm(p[0], c[0], x)
  c1, h1 = ref_gru_after(p[1], c[1], h0)
  return (c0, c1), h1


def ref_stack_skip(p, c, x):
  c0, h0 = ref_lstm(p[0], c[0], x)
  c1, h1 = ref_gru_after(p[1], c[1], np.concatenate([x, h0]))
  return (c0, c1), np.concatenate([h0, h1])


def ref_residual(p, c, x):
  c, h = ref_lstm(p, c, x)
  return c, h + x


def packed_flags(cell):
  """A cell reading ``(x, should_reset)`` (``reset_on``, ``rg_lru(resets=True)``) with its inputs packed as one
  array ``[*B, F + 1]`` (flag in the last column, ``> 0.5`` set), so that the generic checks, which build, flip,
  pad and cast arrays, run it (its sequence path too); ``unroll``'s pytree inputs are tested directly in
  tests/test_reset.py and tests/test_parallel_cells.py."""
  unpack = lambda x: (x[..., :-1], x[..., -1] > 0.5)
  sequence = None
  if cell.sequence is not None:
    sequence = jaxrnn.SequencePath(lambda p, c, xs, mask, options: cell.sequence.run(p, c, unpack(xs), mask, options),
                                   cell.sequence.honours)
  return jaxrnn.Cell(init=lambda key, size: cell.init(key, size - 1), initial_carry=cell.initial_carry,
                     step=lambda p, c, x: cell.step(p, c, unpack(x)),
                     input_transform=lambda p, xs: packed(*cell.input_transform(p, unpack(xs))),
                     step_transformed=lambda p, c, u: cell.step_transformed(p, c, unpack(u)), sequence=sequence,
                     name=cell.name, carry_jacobian_diagonal=None if cell.carry_jacobian_diagonal is None else
                     lambda p, c, x: cell.carry_jacobian_diagonal(p, c, unpack(x)))


def packed(u, flag):
  return jnp.concatenate([u, flag.astype(u.dtype)[..., None]], axis=-1)


def ref_reset(p, c, x):
  x, flag = x[:-1], x[-1] > 0.5
  if flag:
    c = jaxrnn.GRUCarry(h=np.zeros_like(c.h))
  return ref_gru_after(p, c, x)


def ref_wrapped(ref):
  """The reference of a dropout wrapper at inference: the wrapped cell's, inside ``DropoutCarry(cell, None)``."""
  def step(p, c, x):
    inner, h = ref(p, c.cell, x)
    return jaxrnn.DropoutCarry(cell=inner, key=None), h
  return step


def ref_learned(p, c, x):
  return ref_lstm(p.cell, c, x)


def ref_projection(p, c, x):
  c, h = ref_lstm(p.cell, c, x)
  return c, h @ p.dense.w + p.dense.b


def ref_input_transform(p, c, x):
  return ref_gru_after(p.cell, c, np.tanh(x @ p.dense.w + p.dense.b))


def ref_zoneout_inference(rate):
  def step(p, c, x):
    new, _ = ref_lstm(p, c.cell, x)
    mixed = jaxrnn.LSTMCarry(h=rate * c.cell.h + (1 - rate) * new.h, c=rate * c.cell.c + (1 - rate) * new.c)
    return jaxrnn.DropoutCarry(cell=mixed, key=None), mixed.h
  return step


CASES = [
    CellCase("stack_lstm_gru", lambda **kw: jaxrnn.stack(jaxrnn.lstm(4, **kw), jaxrnn.gru(3, **kw)),
             reference=ref_stack),
    CellCase("stack_skip", lambda **kw: jaxrnn.stack(jaxrnn.lstm(4, **kw), jaxrnn.gru(3, **kw), skip_input=True,
                                                     skip_output=True), reference=ref_stack_skip,
             variant_of="stack_lstm_gru"),
    CellCase("residual_lstm", lambda **kw: jaxrnn.residual(jaxrnn.lstm(3, **kw)), reference=ref_residual),
    CellCase("reset_on_gru", lambda **kw: packed_flags(jaxrnn.reset_on(jaxrnn.gru(5, **kw))), input_shape=(4,),
             reference=ref_reset),
    CellCase("learned_init_lstm", lambda **kw: jaxrnn.learned_initial_carry(jaxrnn.lstm(4, **kw)),
             reference=ref_learned),
    CellCase("with_projection_lstm", lambda **kw: jaxrnn.with_projection(jaxrnn.lstm(4, **kw), 2, **kw),
             reference=ref_projection),
    CellCase("with_input_transform_gru",
             lambda **kw: jaxrnn.with_input_transform(jaxrnn.gru(4, **kw), 5, activation="tanh", **kw),
             reference=ref_input_transform),
    CellCase("zoneout_lstm_inference", lambda **kw: jaxrnn.zoneout(jaxrnn.lstm(4, **kw), 0.3),
             reference=ref_zoneout_inference(0.3)),
    # Without a key (inference) the dropout wrappers are the wrapped cell; their masks: tests/test_dropout.py and
    # tests/test_run_options.py.
    CellCase("dropout_gru_inference", lambda **kw: jaxrnn.dropout(jaxrnn.gru(4, **kw), 0.3, 0.3),
             reference=ref_wrapped(ref_gru(reset_after=True))),
    CellCase("variational_dropout_lstm_inference",
             lambda **kw: jaxrnn.variational_dropout(jaxrnn.lstm(4, **kw), 0.3, 0.3), reference=ref_wrapped(ref_lstm),
             variant_of="zoneout_lstm_inference"),
    # Sequence-only cells: no step; checked against NumPy in tests/test_bidirectional.py.
    CellCase("bidirectional_lstm_gru", lambda **kw: jaxrnn.bidirectional(jaxrnn.lstm(4, **kw), jaxrnn.gru(3, **kw)),
             has_step=False),
    CellCase("stack_bidirectional_lstm",
             lambda **kw: jaxrnn.stack(jaxrnn.bidirectional(jaxrnn.lstm(3, **kw), jaxrnn.gru(3, **kw), merge="sum"),
                                       jaxrnn.lstm(3, **kw)), has_step=False),
]
