"""Deep (stacked) RNNs: ``stack(*cells)``, as stax's ``serial`` and Haiku's ``DeepRNN``."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.combinators import _util
from jaxrnn.combinators import reset
from jaxrnn.combinators.dropout import dropout as dropout_wrapper
from jaxrnn.types import ALL_OPTIONS, Cell, CellConfig, ResetSequenceFn, SequencePath


def stack(
    *cells: Cell,
    skip_input: bool = False,
    skip_output: bool = False,
    dropout: float = 0.0,
    name: Optional[str] = None,
) -> Cell:
  r"""A deep RNN: layer ``l`` reads the outputs of layer ``l - 1`` at the same step.

  .. math::

     h^1_t = \mathrm{cell}_1(h^1_{t-1}, x_t), \qquad
     h^l_t = \mathrm{cell}_l(h^l_{t-1}, h^{l-1}_t) \quad (\text{or } [x_t; h^{l-1}_t] \text{ with skip\_input}),

  and the output is ``h^L_t`` (or ``[h^1_t; ...; h^L_t]`` with ``skip_output``). The two skip connections are
  those of Graves (2013), "Generating sequences with recurrent neural networks", eq. (1)-(3).

  Params and carries are plain tuples with one entry per layer. ``init(key, input_size)`` infers each layer's
  input size from the output of the one below (``jax.eval_shape``, nothing is computed), as stax does.

  Two ways to run it compute the same function. :func:`jaxrnn.unroll` (``mode="auto"``) runs the layers one after
  the other over the whole sequence (the stack's ``sequence`` path, as cuDNN does), each with
  :func:`jaxrnn.unroll` and the caller's run options (``remat``, ``unroll``, ``hoist`` reach every layer's scan;
  each layer takes its own fused or parallel path; each layer's input projection can be hoisted).
  ``mode="step"`` and ``step`` run all layers step by step in one scan; that needs every layer to have a step
  (a :func:`jaxrnn.bidirectional` layer has none: its ``step`` raises). Where every layer's path declares resets
  (:attr:`jaxrnn.SequencePath.resets`), so does the stack's: :func:`jaxrnn.reset_on` of a stack restarts every
  layer at a flagged step and still runs the layers one after the other, each by its own path with the resets
  inside (a parallel scan stays parallel).

  Args:
    *cells: the layers, bottom first; any :class:`jaxrnn.Cell`, including other combinators.
    skip_input: feed the stack's input ``x_t`` to every layer, concatenated before the output of the layer below
      (``[*B, F + H_{l-1}]``).
    skip_output: the output is the concatenation of every layer's output, ``[*B, H_1 + ... + H_L]``.
    dropout: a rate of dropout on the output of every layer except the last (Zaremba, Sutskever & Vinyals
      2014: only the non-recurrent connections). Each such layer is wrapped in ``jaxrnn.dropout(cell,
      output_rate=dropout)``, so the masks come from the key given to ``initial_carry(..., key=key)``; without
      a key (inference) there is no dropout.
    name: the name of the cell (default ``"stack(lstm,gru)"``).

  Returns:
    A :class:`jaxrnn.Cell` with params ``(p_1, ..., p_L)`` and carry ``(c_1, ..., c_L)``.
    ``initial_carry(params, batch_shape=(), dtype=None, key=None)``: ``key`` is split over the layers that take
    one (dropout wrappers).

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.stack(jaxrnn.lstm(4), jaxrnn.gru(3), skip_output=True)
    >>> params = cell.init(jax.random.key(0), 2)
    >>> params[1].w_i.shape                                     # the GRU reads the LSTM's 4 outputs
    (4, 9)
    >>> carry, hs = jaxrnn.unroll(cell, params, cell.initial_carry(params, (5,)), jnp.ones((5, 6, 2)))
    >>> hs.shape
    (5, 6, 7)
  """
  if not cells:
    raise ValueError("stack needs at least one cell, got none")
  for i, c in enumerate(cells):
    _checks.cell(f"cells[{i}]", c)
  if not 0.0 <= dropout < 1.0:
    raise ValueError(f"dropout must be a rate in [0, 1), got {dropout}")
  for i, c in enumerate(cells[1:], 1):
    if c.map_ndim not in (0, cells[0].map_ndim):
      raise ValueError(f"the layers of a stack share the first layer's map axes (the carry's batch_shape is "
                       f"(*B, *S) with its map_ndim={cells[0].map_ndim}); cells[{i}] ({c.name}) has map_ndim="
                       f"{c.map_ndim}")
  # The layers as given (before the dropout wrappers): the dropout is the `dropout` entry.
  config = CellConfig("stack", (("dropout", float(dropout)), ("skip_input", bool(skip_input)),
                                ("skip_output", bool(skip_output))), tuple(cells))
  if dropout > 0.0:
    cells = tuple(dropout_wrapper(c, output_rate=dropout) for c in cells[:-1]) + (cells[-1],)
  cells = tuple(cells)
  n = len(cells)
  if name is None:
    name = "stack(" + ",".join(c.name for c in cells) + ")"

  def init(key, input_size):
    _checks.key("key", key)
    feat = _checks.feature_shape("input_size", input_size)
    keys = jax.random.split(key, n)
    params = []
    below = feat
    for i, (cell, k) in enumerate(zip(cells, keys)):
      size = below
      if i > 0 and skip_input:
        if len(feat) != 1 or len(below) != 1:
          raise ValueError(f"skip_input needs vector inputs and outputs, got {feat} and {below}")
        size = (feat[0] + below[0],)
      p = cell.init(k, _util.as_input_size(size))
      params.append(p)
      below = _util.output_shape(cell, p, size)
    return tuple(params)

  def check_params(params):
    if not isinstance(params, tuple) or len(params) != n:
      raise TypeError(f"params of {name} must be a tuple of {n} layer params, got {type(params).__name__}"
                      f"{'' if not isinstance(params, tuple) else f' of length {len(params)}'}")

  def initial_carry(params, batch_shape=(), dtype=None, *, key=None):
    _checks.initial_carry_params(params)
    check_params(params)
    keys = _util.split_optional(key, n)
    return tuple(c.initial_carry(p, batch_shape, dtype, key=k) for c, p, k in zip(cells, params, keys))

  def check_carry(carry, what="carry"):
    if not isinstance(carry, tuple) or len(carry) != n:
      raise TypeError(f"{what} of {name} must be a tuple of {n} layer carries (build it with "
                      f"cell.initial_carry), got {type(carry).__name__}")

  def layer_input(i, x, below):
    if i > 0 and skip_input:
      return jnp.concatenate([x.astype(below.dtype), below], axis=-1)
    return below

  def output(hs):
    if skip_output:
      dt = jnp.result_type(*[h.dtype for h in hs])
      return jnp.concatenate([h.astype(dt) for h in hs], axis=-1)
    return hs[-1]

  def layers(params, carry, xs, run):
    """Layer ``i`` after layer ``i - 1``, each by ``run(i, cell, p, c, inputs)`` (one step, or the whole sequence)."""
    check_params(params)
    check_carry(carry)
    new, hs = [], []
    below = xs
    for i, (cell, p, c) in enumerate(zip(cells, params, carry)):
      c, below = run(i, cell, p, c, layer_input(i, xs, below))
      new.append(c)
      hs.append(below)
    return tuple(new), output(hs)

  def step(params, carry, x):
    return layers(params, carry, x, lambda i, cell, p, c, x: cell.step(p, c, x))

  def sequence(params, carry, xs, mask, options):
    return layers(params, carry, xs, lambda i, cell, p, c, x: _util.unroll_inner(cell, p, c, x, mask, options))

  resets: Optional[ResetSequenceFn] = None
  if reset.declared_resets(*cells):
    def sequence_resets(params, carry, xs, should_reset, reset_carry, mask, options):
      # A flag restarts every layer at once: layer l from reset_carry[l], reading the restarted layer below.
      check_carry(reset_carry, "reset_carry")
      return layers(params, carry, xs, lambda i, cell, p, c, x: reset.unroll_with_resets(
          cell, p, c, x, should_reset, reset_carry[i], mask, options))

    resets = sequence_resets

  return Cell(init=init, initial_carry=initial_carry, step=step,
              sequence=SequencePath(sequence, ALL_OPTIONS, resets=resets),
              input_ndim=cells[0].input_ndim, name=name, config=config, map_ndim=cells[0].map_ndim)
