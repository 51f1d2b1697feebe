"""Dropout for recurrent cells: per-step, variational (one mask per sequence) and zoneout.

How keys reach the steps: every wrapper here has the carry ``DropoutCarry(cell, key)``.
``initial_carry(params, batch_shape=(), dtype=None, key=None)`` takes an explicit PRNG key and stores one raw key
per example (``uint32[*B, K]``, so that leading batch axes equal ``jax.vmap`` and every carry leaf has the batch
shape). The per-step wrappers (``dropout``, ``zoneout``) split that key at every step; ``variational_dropout``
keeps it and derives the same masks from it at every step, so its masks are constant over a sequence. With
``key=None`` (inference) the key field is ``None`` and there is no dropout (zoneout uses its expectation): the
train and inference carries differ only in that field, and the params are the same. A new sequence (a new
``initial_carry`` call) needs a new key.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import sequences
from jaxrnn.combinators import _util
from jaxrnn.combinators import reset
from jaxrnn.types import ALL_OPTIONS, Cell, ResetSequenceFn, SequencePath


class DropoutCarry(NamedTuple):
  """Carry of the dropout wrappers."""

  cell: Any  # the wrapped cell's carry, leaves [*B, ...]
  key: Optional[jax.Array]  # uint32[*B, K]: one raw PRNG key per example; None at inference (no dropout)


def _rate(name, rate):
  rate = _checks.finite_number(name, rate)
  if not 0.0 <= rate < 1.0:
    raise ValueError(f"{name} must be a rate in [0, 1), got {rate}")
  return rate


def _wrapper(cell: Cell, name: str, step, sequence=None, resets: Optional[ResetSequenceFn] = None) -> Cell:
  _checks.cell("cell", cell)

  def initial_carry(params, batch_shape=(), dtype=None, *, key=None):
    _checks.initial_carry_params(params)
    batch_shape = _checks.batch_shape("batch_shape", batch_shape)
    if key is None:
      return DropoutCarry(cell=cell.initial_carry(params, batch_shape, dtype), key=None)
    _checks.key("key", key)
    k_self, k_cell = jax.random.split(key)
    return DropoutCarry(cell=cell.initial_carry(params, batch_shape, dtype, key=k_cell),
                        key=_util.example_keys(k_self, batch_shape))

  def checked_step(params, carry, x):
    _checks.carry_type("carry", carry, DropoutCarry)
    return step(params, carry, x)

  checked_sequence = None
  if sequence is not None:
    def checked_run(params, carry, xs, mask, options):
      _checks.carry_type("carry", carry, DropoutCarry)
      return sequence(params, carry, xs, mask, options)

    checked_resets: Optional[ResetSequenceFn] = None
    if resets is not None:
      def checked_resets_run(params, carry, xs, should_reset, reset_carry, mask, options):
        _checks.carry_type("carry", carry, DropoutCarry)
        _checks.carry_type("reset_carry", reset_carry, DropoutCarry)
        if (carry.key is None) != (reset_carry.key is None):
          raise ValueError(f"carry and reset_carry of {name} must both have a key (training) or both none "
                           f"(inference), got carry.key={'None' if carry.key is None else 'a key'} and "
                           f"reset_carry.key={'None' if reset_carry.key is None else 'a key'}")
        return resets(params, carry, xs, should_reset, reset_carry, mask, options)

      checked_resets = checked_resets_run

    checked_sequence = SequencePath(checked_run, ALL_OPTIONS, resets=checked_resets)

  return Cell(init=cell.init, initial_carry=initial_carry, step=checked_step, sequence=checked_sequence,
              input_ndim=cell.input_ndim, name=name, map_ndim=cell.map_ndim)


def _batch_ndim(keys):
  return keys.ndim - 1


def _dropped(keys: jax.Array, rate: float, a: jax.Array, nb: int) -> jax.Array:
  """``a: [*B, ...]`` with inverted dropout at ``rate`` from the per-example ``keys: [*B, K]`` (``nb = len(B)``);
  ``a`` itself at rate 0."""
  return a * _util.keep_masks(keys, rate, a.shape[nb:], a.dtype) if rate else a


def _inference_step(cell: Cell, params: Any, carry: DropoutCarry, x: Any):
  """A step without a key: the wrapped cell's, unchanged (no dropout)."""
  c, h = cell.step(params, carry.cell, x)
  return DropoutCarry(cell=c, key=None), h


def _step_keys(keys: jax.Array, mask: Optional[jax.Array], num_steps: int, n: int, unroll: Any = 1,
               resets: Optional[jax.Array] = None, reset_keys: Optional[jax.Array] = None):
  """The per-step keys that ``n + 1``-way splits of ``keys: [*B, K]`` give over ``num_steps`` steps.

  At each step the carried key is split into ``(key, k_1, ..., k_n)`` and moves on to ``key`` where ``mask`` is
  True (a masked step keeps the carry). With ``resets: bool [T, *B]`` (False at masked steps), the key entering a
  flagged step is ``reset_keys [*B, K]`` instead (the key of the reset carry). Returns ``(final_key [*B, K], [k_1,
  ..., k_n])`` with each ``k_i: [T, *B, K]``: what a scan of the step draws, for all steps at once.
  """
  def body(key, inputs):
    m, r = inputs
    if r is not None:
      assert reset_keys is not None  # flags come with the reset carry's keys
      key = jnp.where(r[..., None], reset_keys, key)
    new, *drawn = _util.split_examples(key, n + 1)
    if m is not None:
      new = jnp.where(m[..., None], new, key)
    return new, drawn

  return jax.lax.scan(body, keys, (mask, resets), length=num_steps, unroll=unroll)


def dropout(cell: Cell, input_rate: float = 0.0, output_rate: float = 0.0, name: Optional[str] = None) -> Cell:
  """Dropout on the input and the output of a cell with fresh masks at every step.

  Only the non-recurrent connections are dropped (Zaremba, Sutskever & Vinyals 2014): ``x_t`` before the cell
  and ``h_t`` after it; the carry the next step reads is not dropped. Inverted dropout: kept units are scaled
  by ``1 / (1 - rate)``, so inference (``key=None``) needs no rescaling.
  The wrapper has a whole-sequence path too: it draws the masks of all steps at once from the same per-step keys as
  the step path and runs the wrapped cell with :func:`jaxrnn.unroll` (its fused or parallel path, and every run
  option), so every path gives the same masks for the same key. Where the wrapped cell's path declares resets, so
  does the wrapper's (a flagged step restarts the cell's carry and the key from the reset carry's): at inference
  (no key) :func:`jaxrnn.reset_on` of the wrapper keeps a parallel scan parallel.

  Args:
    cell: the wrapped cell.
    input_rate: probability of zeroing each input unit at each step.
    output_rate: probability of zeroing each output unit at each step.
    name: the cell's name.

  Returns:
    A :class:`jaxrnn.Cell` with the wrapped cell's params and carry ``DropoutCarry(cell, key)``
    (see the module docstring for keys).

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.dropout(jaxrnn.gru(4), output_rate=0.5)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> train = cell.initial_carry(params, (2,), key=jax.random.key(1))   # masks from this key
    >>> infer = cell.initial_carry(params, (2,))                          # no key: no dropout
    >>> train.key.shape, infer.key
    ((2, 2), None)
  """
  input_rate = _rate("input_rate", input_rate)
  output_rate = _rate("output_rate", output_rate)
  name = name or f"dropout({cell.name})"

  def step(params, carry, x):
    if carry.key is None:
      return _inference_step(cell, params, carry, x)
    key, k_in, k_out = _util.split_examples(carry.key, 3)
    nb = _batch_ndim(key)
    c, h = cell.step(params, carry.cell, _dropped(k_in, input_rate, jnp.asarray(x), nb))
    return DropoutCarry(cell=c, key=key), _dropped(k_out, output_rate, h, nb)

  def masked_run(carry, xs, mask, options, run, flags=None, reset_keys=None):
    """The wrapped cell's ``run(cell_carry, xs) -> (cell_carry, hs)`` between the input and output masks."""
    if carry.key is None:
      c, hs = run(carry.cell, xs)
      return DropoutCarry(cell=c, key=None), hs
    # The keys of every step, split exactly as ``step`` splits them (the key advances only at valid steps and
    # restarts from the reset carry's at a flagged one), so both paths draw the same masks from the same key.
    key, (k_in, k_out) = _step_keys(carry.key, mask, xs.shape[0], 2, sequences.scan_unroll(options.unroll), flags,
                                    reset_keys)
    nb = _batch_ndim(carry.key)
    masks = lambda keys, rate, a: jax.vmap(lambda k: _util.keep_masks(k, rate, a.shape[1 + nb:], a.dtype))(keys)
    if input_rate:
      xs = xs * masks(k_in, input_rate, xs)
    c, hs = run(carry.cell, xs)
    if output_rate:
      hs = hs * masks(k_out, output_rate, hs)
    return DropoutCarry(cell=c, key=key), hs

  def sequence(params, carry, xs, mask, options):
    return masked_run(carry, xs, mask, options, lambda c, x: _util.unroll_inner(cell, params, c, x, mask, options))

  resets: Optional[ResetSequenceFn] = None
  if reset.declared_resets(cell):
    def sequence_resets(params, carry, xs, should_reset, reset_carry, mask, options):
      flags = reset.valid_flags(should_reset, mask, name)
      inner = lambda c, x: reset.unroll_with_resets(cell, params, c, x, flags, reset_carry.cell, mask, options)
      return masked_run(carry, xs, mask, options, inner, flags, reset_carry.key)

    resets = sequence_resets

  return _wrapper(cell, name, step, sequence, resets)


def variational_dropout(cell: Cell, input_rate: float = 0.0, state_rate: float = 0.0,
                        name: Optional[str] = None) -> Cell:
  """Variational dropout (Gal & Ghahramani 2016): one mask per sequence for the inputs and the recurrent state.

  The same input mask multiplies ``x_t`` at every step, and the same state mask multiplies ``h_{t-1}`` where
  the step reads it (the field ``h`` of the wrapped cell's carry; an LSTM's cell state ``c`` is not dropped,
  as in the paper). The carry passed on keeps the undropped ``h_t``. The masks are drawn from the per-example
  key stored in the carry, which does not change over the sequence. Inverted scaling by ``1 / (1 - rate)``.

  Args:
    cell: the wrapped cell; with ``state_rate > 0`` its carry must have a field ``h`` (every built-in cell).
    input_rate: probability of zeroing each input unit, for a whole sequence.
    state_rate: probability of zeroing each unit of ``h`` where the recurrence reads it, for a whole sequence.
    name: the cell's name.

  Returns:
    A :class:`jaxrnn.Cell` with carry ``DropoutCarry(cell, key)`` (see the module docstring).

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.variational_dropout(jaxrnn.lstm(4), input_rate=0.25, state_rate=0.25)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> carry = cell.initial_carry(params, (2,), key=jax.random.key(1))
    >>> _, hs = jaxrnn.unroll(cell, params, carry, jnp.ones((2, 5, 3)))
    >>> hs.shape
    (2, 5, 4)
  """
  input_rate = _rate("input_rate", input_rate)
  state_rate = _rate("state_rate", state_rate)

  def step(params, carry, x):
    if carry.key is None:
      return _inference_step(cell, params, carry, x)
    k_in, k_state = _util.split_examples(carry.key, 2)
    nb = _batch_ndim(carry.key)
    x = _dropped(k_in, input_rate, jnp.asarray(x), nb)
    inner = carry.cell
    if state_rate:
      if not hasattr(inner, "h"):
        raise TypeError(f"variational_dropout(state_rate>0) needs a carry with a field 'h', got "
                        f"{type(inner).__name__}")
      inner = inner._replace(h=_dropped(k_state, state_rate, inner.h, nb))
    c, h = cell.step(params, inner, x)
    return DropoutCarry(cell=c, key=carry.key), h

  return _wrapper(cell, name or f"variational_dropout({cell.name})", step)


def zoneout(cell: Cell, rate: float, name: Optional[str] = None) -> Cell:
  r"""Zoneout (Krueger et al. 2016): each carry unit keeps its previous value with probability ``rate``.

  .. math::

     c_t = d_t \odot c_{t-1} + (1 - d_t) \odot \mathrm{cell}(c_{t-1}, x_t), \qquad d_t \sim \mathrm{Bernoulli}(rate)

  with independent masks for every floating carry leaf (an LSTM's ``h`` and ``c``) at every step. At inference
  (``key=None``) the masks are replaced by their expectation: ``c_t = rate c_{t-1} + (1 - rate) c'_t``. The
  output is the zoned-out ``h`` when the carry has a field ``h`` of the output's shape, else the cell's output.

  Args:
    cell: the wrapped cell.
    rate: the zoneout probability.
    name: the cell's name.

  Returns:
    A :class:`jaxrnn.Cell` with carry ``DropoutCarry(cell, key)`` (see the module docstring).

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.zoneout(jaxrnn.lstm(4), 0.1)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> carry, h = cell(params, cell.initial_carry(params, (2,), key=jax.random.key(1)), jnp.ones((2, 3)))
    >>> bool(jnp.array_equal(h, carry.cell.h))
    True
  """
  rate = _rate("rate", rate)

  def step(params, carry, x):
    new, h = cell.step(params, carry.cell, x)
    old_leaves, treedef = jax.tree.flatten(carry.cell)
    new_leaves = jax.tree.leaves(new)
    key = carry.key
    if key is None:
      mixed = [o + jnp.asarray(1.0 - rate, n.dtype) * (n - o) if jnp.issubdtype(n.dtype, jnp.floating) else n
               for o, n in zip(old_leaves, new_leaves)]
    else:
      key, *keys = _util.split_examples(key, len(new_leaves) + 1)
      nb = _batch_ndim(key)
      mixed = [jnp.where(_util.bernoulli(k, rate, n.shape[nb:]), o, n) if jnp.issubdtype(n.dtype, jnp.floating)
               else n for k, o, n in zip(keys, old_leaves, new_leaves)]
    new = jax.tree.unflatten(treedef, mixed)
    out = getattr(new, "h", None)
    if out is None or not hasattr(out, "shape") or out.shape != h.shape:
      out = h
    return DropoutCarry(cell=new, key=key), out.astype(h.dtype)

  return _wrapper(cell, name or f"zoneout({cell.name})", step)
