"""jaxrnn cells as Flax NNX modules, and a sequence layer running the jaxrnn unroll engine.

:class:`CellModule` wraps ANY :class:`jaxrnn.Cell` as a ``flax.nnx.RNNCellBase``: ``cell.init`` runs once at
construction with a key from ``rngs.params()``, and every leaf of the params NamedTuple becomes an ``nnx.Param``
(``module.params.w_i``, ...). ``__call__(carry, x) -> (carry, h)`` is the cell's ``step``;
``initialize_carry(input_shape, rngs=None)`` and ``num_feature_axes`` make it work inside ``flax.nnx.RNN`` and
``flax.nnx.Bidirectional``. :class:`RNN` runs it over a sequence with :func:`jaxrnn.unroll` (one ``lax.scan``,
the input projection hoisted out of the loop on GPU/TPU).

Example:

  >>> import jax.numpy as jnp, jaxrnn
  >>> from flax import nnx
  >>> from jaxrnn.flax import nnx as jnnx
  >>> layer = jnnx.RNN(jnnx.CellModule(jaxrnn.lstm(4), 3, rngs=nnx.Rngs(0)))
  >>> layer(jnp.ones((2, 5, 3), jnp.float32), seq_lengths=jnp.array([5, 2])).shape
  (2, 5, 4)
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax

import jaxrnn
from jaxrnn import _checks
from jaxrnn import _optional
from jaxrnn import sequences
from jaxrnn.flax import _tree
from jaxrnn.types import Cell, RunOptions, carry_batch_shape

try:
  from flax import nnx
except ImportError as e:
  raise _optional.missing("jaxrnn.flax.nnx", "flax", "flax") from e


def _is_variable(x: Any) -> bool:
  return isinstance(x, nnx.Variable)


def _carry_key(rngs: Any) -> jax.Array:
  """A key from Flax's carry ``rngs`` (an ``nnx.Rngs``: its ``carry`` stream; an ``nnx.RngStream``; a key)."""
  if isinstance(rngs, nnx.Rngs):
    return rngs.carry()
  if isinstance(rngs, nnx.RngStream):
    return rngs()
  if isinstance(rngs, jax.Array):
    return rngs
  raise ValueError(f"carry_init needs rngs (an nnx.Rngs, nnx.RngStream or key) to draw the carry from, got "
                   f"{type(rngs).__name__}")


class CellModule(nnx.RNNCellBase):
  """Any :class:`jaxrnn.Cell` as a Flax NNX recurrent cell.

  Args:
    cell: the jaxrnn cell (e.g. ``jaxrnn.gru(8)``).
    input_size: the per-example input feature size ``F`` (a tuple for cells with several feature axes).
    rngs: ``nnx.Rngs``; ``rngs.params()`` is the key given to ``cell.init``.
    params: instead of ``input_size`` and ``rngs``: existing params of ``cell`` (e.g. converted from a Flax
      cell with :mod:`jaxrnn.flax.convert`) to wrap as ``nnx.Param``.
    carry_init: Flax's ``carry_init(key, shape, dtype)``: replaces every floating leaf of the initial carry
      (Flax prefers it as an argument of :meth:`initialize_carry`, which this also takes).

  Attributes:
    params: the cell's params NamedTuple whose array leaves are ``nnx.Param`` variables.

  Example:

    >>> import jax.numpy as jnp, jaxrnn
    >>> from flax import nnx
    >>> from jaxrnn.flax.nnx import CellModule
    >>> layer = nnx.RNN(CellModule(jaxrnn.gru(4), 3, rngs=nnx.Rngs(0)))     # Flax's own RNN layer
    >>> layer(jnp.ones((2, 5, 3), jnp.float32)).shape
    (2, 5, 4)
  """

  def __init__(self, cell: Cell, input_size: Any = None, *, rngs: Optional[nnx.Rngs] = None, params: Any = None,
               carry_init: Any = None):
    _checks.cell("cell", cell)
    if params is None:
      if input_size is None or rngs is None:
        raise ValueError("CellModule needs input_size and rngs (or existing params=...)")
      params = cell.init(rngs.params(), input_size)
    elif input_size is not None or rngs is not None:
      raise ValueError("give either input_size and rngs, or params, not both")
    self.cell = cell
    self.carry_init = carry_init
    self.params = nnx.data(jax.tree.map(nnx.Param, params))

  def cell_params(self) -> Any:
    """The params as the cell's NamedTuple of arrays, ready for the functional API."""
    return jax.tree.map(lambda v: v[...], self.params, is_leaf=_is_variable)

  def __call__(self, carry: Any, x: jax.Array) -> tuple[Any, jax.Array]:
    """One step: ``(carry, x: [*B, *F]) -> (carry, h: [*B, H])``, the cell's ``step``."""
    return self.cell.step(self.cell_params(), carry, x)

  def initialize_carry(self, input_shape: tuple[int, ...], rngs: Any = None, carry_init: Any = None, *,
                       key: Optional[jax.Array] = None) -> Any:
    """The cell's ``initial_carry`` for one step's input shape ``[*B, *F]``.

    Args:
      input_shape: one step's input shape ``[*B, *F]``.
      rngs: Flax's carry rngs, the keys of ``carry_init`` (unused without one).
      carry_init: Flax's ``carry_init(key, shape, dtype)`` (else the module's), applied to every floating leaf.
      key: the key of the cell's dropout masks (:func:`jaxrnn.dropout`, ``jaxrnn.stack(..., dropout=p)``);
        ``None``: no dropout. :class:`RNN` passes it from its dropout stream; Flax's ``nnx.RNN`` does not.
    """
    nf = self.cell.input_ndim
    batch, features = tuple(input_shape[:len(input_shape) - nf]), tuple(input_shape[len(input_shape) - nf:])
    carry = self.cell.initial_carry(self.cell_params(), carry_batch_shape(self.cell, batch, features), key=key)
    carry_init = self.carry_init if carry_init is None else carry_init
    if carry_init is not None:
      carry = _tree.apply_carry_init(carry, carry_init, _carry_key(rngs))
    return carry

  @property
  def num_feature_axes(self) -> int:
    return self.cell.input_ndim


class RNN(nnx.Module):
  """A jaxrnn cell over a sequence with :func:`jaxrnn.unroll`: one ``lax.scan`` (input projection hoisted on
  GPU/TPU).

  A drop-in for ``flax.nnx.RNN`` with the same arguments; the differences (docs/flax.md lists them) are those of
  ``jaxrnn.flax.linen.RNN``: zeros at padded steps, the carry at each sequence's last valid step, the run
  options, and dropout. ``reverse=True`` returns outputs in processing order unless ``keep_order=True``, as Flax.

  Dropout follows NNX's conventions (as ``nnx.Dropout``): with ``rngs`` given, the layer keeps a fork of its
  ``rng_collection`` stream and a jaxrnn dropout cell draws its masks from it unless ``deterministic`` is True
  (``model.eval()`` sets it, ``model.train()`` clears it); a call's ``rngs`` (an ``nnx.Rngs``) takes precedence.

  A subclass of :class:`CellModule` (one that overrides ``__call__``) runs through Flax's own ``nnx.RNN`` (a
  scan of its ``__call__``), with ``unroll``, ``broadcast_rngs`` and ``state_axes``; ``remat``, ``hoist`` and
  ``mode="sequence"`` then raise.

  Args:
    cell: a :class:`CellModule` (or a subclass), or a :class:`jaxrnn.Cell` with ``input_size`` and ``rngs``.
    input_size: with a bare cell: the per-example input feature size.
    time_major: inputs ``[T, *B, *F]`` instead of ``[*B, T, *F]``.
    return_carry: return ``(carry, hs)`` instead of ``hs``.
    reverse: run each sequence backwards from its own last valid step.
    keep_order: with ``reverse``, outputs in input order (else processing order, as Flax).
    unroll: steps per ``lax.scan`` iteration (``None``: the backend's default, ``jaxrnn.sequences.default_unroll()``).
    remat, hoist, options: :func:`jaxrnn.unroll`'s run options.
    mode: :func:`jaxrnn.unroll`'s ``mode``.
    deterministic: ``True``: no dropout; ``False``: dropout (needs rngs); ``None``: dropout iff rngs are there.
    rng_collection: the stream of ``rngs`` the dropout keys come from (``"dropout"``).
    broadcast_rngs, state_axes: Flax's ``nnx.RNN`` arguments, for a :class:`CellModule` subclass only (whose own
      modules follow ``model.eval()``; a call's ``deterministic`` cannot reach them and raises).
    rngs: ``nnx.Rngs``: with a bare cell, ``rngs.params()`` initialises it; the dropout stream is forked from it.
  """

  def __init__(self, cell: Any, input_size: Any = None, *, time_major: bool = False, return_carry: bool = False,
               reverse: bool = False, keep_order: bool = False, unroll: Any = None, remat: Any = False,
               hoist: Optional[bool] = None, options: Optional[RunOptions] = None, mode: str = "auto",
               deterministic: Optional[bool] = None, rng_collection: str = "dropout", broadcast_rngs: Any = None,
               state_axes: Any = None, rngs: Any = None):
    if isinstance(cell, Cell):
      if input_size is None or not isinstance(rngs, nnx.Rngs):
        raise ValueError("jnnx.RNN(cell) with a bare jaxrnn.Cell needs input_size and rngs=nnx.Rngs(...) to "
                         "initialise its params (or pass a jnnx.CellModule)")
      cell = CellModule(cell, input_size, rngs=rngs)
    elif not isinstance(cell, CellModule):
      raise TypeError(f"cell must be a jaxrnn.Cell or a jaxrnn.flax.nnx.CellModule, got {type(cell).__name__}")
    elif input_size is not None:
      raise ValueError("input_size is for a bare jaxrnn.Cell; a CellModule has its params already")
    if type(cell) is CellModule and (broadcast_rngs is not None or state_axes is not None):  # pylint: disable=unidiomatic-typecheck
      raise ValueError("broadcast_rngs and state_axes are nnx.scan arguments for a CellModule subclass whose "
                       "__call__ uses NNX state or rng streams; a jaxrnn cell's step uses none (its dropout "
                       "masks come from the key in its carry: see deterministic)")
    self.cell = cell
    self.time_major = time_major
    self.return_carry = return_carry
    self.reverse = reverse
    self.keep_order = keep_order
    self.unroll = unroll
    self.remat = remat
    self.hoist = hoist
    self.options = options
    self.mode = mode
    self.deterministic = _tree.resolve_deterministic("deterministic", deterministic)
    self.rng_collection = rng_collection
    self.broadcast_rngs = broadcast_rngs
    self.state_axes = state_axes
    if isinstance(rngs, nnx.Rngs):
      self.rngs = rngs[rng_collection].fork()
    elif isinstance(rngs, nnx.RngStream):
      self.rngs = rngs.fork()
    elif rngs is None or rngs is False:
      self.rngs = nnx.data(None)
    else:
      raise TypeError(f"rngs must be an nnx.Rngs, an nnx.RngStream or None, got {type(rngs).__name__} (Flax's "
                      f"rngs=True, a fixed carry stream, has no use here: jaxrnn carries draw nothing by default)")

  def _dropout_key(self, deterministic: Optional[bool], rngs: Any) -> Optional[jax.Array]:
    det = _tree.resolve_deterministic("deterministic", deterministic, self.deterministic)
    stream = rngs[self.rng_collection] if isinstance(rngs, nnx.Rngs) else self.rngs
    if det is True or (det is None and stream is None):
      return None
    if stream is None:
      raise ValueError("deterministic=False needs rngs: jnnx.RNN(..., rngs=nnx.Rngs(...)) or a call's "
                       "rngs=nnx.Rngs(dropout=...)")
    return stream()

  def __call__(self, inputs: jax.Array, *, initial_carry: Any = None, seq_lengths: Optional[jax.Array] = None,
               return_carry: Optional[bool] = None, time_major: Optional[bool] = None,
               reverse: Optional[bool] = None, keep_order: Optional[bool] = None, rngs: Any = None,
               deterministic: Optional[bool] = None):
    """Runs the cell over ``inputs: [*B, T, *F]`` (or ``[T, *B, *F]``); returns ``hs`` or ``(carry, hs)``.

    ``rngs``: an ``nnx.Rngs`` gives the dropout stream (``rng_collection``) and the ``carry`` stream of
    ``carry_init``; an ``nnx.RngStream`` (what ``nnx.Bidirectional`` passes) is the carry stream only. A carry
    given holds its own dropout keys: the layer draws none.
    """
    return_carry = self.return_carry if return_carry is None else return_carry
    time_major = self.time_major if time_major is None else time_major
    reverse = self.reverse if reverse is None else reverse
    keep_order = self.keep_order if keep_order is None else keep_order
    batch, shape = _tree.step_shape(inputs, self.cell.num_feature_axes, time_major)
    if type(self.cell) is not CellModule:  # pylint: disable=unidiomatic-typecheck
      return self._run_subclass(inputs, deterministic, initial_carry=initial_carry, seq_lengths=seq_lengths,
                                return_carry=return_carry, time_major=time_major, reverse=reverse,
                                keep_order=keep_order, rngs=rngs, batch_ndim=len(batch))
    if initial_carry is None:
      key = self._dropout_key(deterministic, rngs)
      initial_carry = self.cell.initialize_carry(shape, rngs, key=key)
    elif deterministic is False:
      raise ValueError("deterministic=False with an initial_carry: the layer draws no dropout key for a carry "
                       "given; build it with cell.initial_carry(params, batch_shape, key=...)")
    return _tree.run_layer(self.cell.cell, self.cell.cell_params(), inputs, initial_carry=initial_carry,
                           seq_lengths=seq_lengths, reverse=reverse, keep_order=keep_order, time_major=time_major,
                           mode=self.mode, run_options=dict(unroll=self.unroll, remat=self.remat, hoist=self.hoist,
                                                            options=self.options), return_carry=return_carry)

  def _run_subclass(self, inputs, deterministic, *, initial_carry, seq_lengths, return_carry, time_major, reverse,
                    keep_order, rngs, batch_ndim):
    """A :class:`CellModule` subclass: its ``__call__`` scanned by Flax's ``nnx.RNN``, padded outputs zeroed."""
    _tree.refuse_for_subclass("jaxrnn.flax.nnx.RNN", self.cell, remat=self.remat, hoist=self.hoist,
                              options=self.options, mode=self.mode, deterministic=deterministic)
    rnn = nnx.RNN(self.cell, time_major=time_major, unroll=sequences.scan_unroll(self.unroll), keep_order=keep_order,
                  broadcast_rngs=self.broadcast_rngs, state_axes=self.state_axes, rngs=False)
    carry, hs = rnn(inputs, initial_carry=initial_carry, seq_lengths=seq_lengths, return_carry=True,
                    reverse=reverse, rngs=rngs)
    hs = _tree.zero_padding(hs, seq_lengths, batch_ndim, time_major)
    return (carry, hs) if return_carry else hs


class Bidirectional(nnx.Module):
  """Two layers, one forwards and one backwards (outputs in input order), outputs merged, as ``flax.nnx.Bidirectional``.

  Args:
    forward_rnn: an :class:`RNN` (run forwards; Flax's ``nnx.RNN`` works too).
    backward_rnn: an :class:`RNN` (run backwards from each sequence's last valid step, outputs kept in order).
    merge_fn: combines the two output sequences (default: concatenate features).
    time_major: inputs ``[T, *B, *F]``.
    return_carry: return ``((carry_fwd, carry_bwd), hs)``.

  jaxrnn's :class:`RNN` also works inside ``flax.nnx.Bidirectional``.
  """

  def __init__(self, forward_rnn: Any, backward_rnn: Any, *,
               merge_fn: Callable[[jax.Array, jax.Array], jax.Array] = _tree.concatenate, time_major: bool = False,
               return_carry: bool = False):
    self.forward_rnn = forward_rnn
    self.backward_rnn = backward_rnn
    self.merge_fn = merge_fn
    self.time_major = time_major
    self.return_carry = return_carry

  def __call__(self, inputs: jax.Array, *, initial_carry: Any = None, seq_lengths: Optional[jax.Array] = None,
               return_carry: Optional[bool] = None, time_major: Optional[bool] = None, rngs: Any = None,
               deterministic: Optional[bool] = None, reverse: Optional[bool] = None,
               keep_order: Optional[bool] = None):
    """``inputs: [*B, T, *F]`` -> merged ``hs`` (or ``((carry_fwd, carry_bwd), hs)``); ``rngs`` and
    ``deterministic`` go to both layers (``reverse`` and ``keep_order`` are not used, as in Flax)."""
    del reverse, keep_order
    extra = {k: v for k, v in (("rngs", rngs), ("deterministic", deterministic)) if v is not None}
    return _tree.run_bidirectional(
        self.forward_rnn, self.backward_rnn, self.merge_fn, inputs, initial_carry=initial_carry,
        seq_lengths=seq_lengths, return_carry=self.return_carry if return_carry is None else return_carry,
        time_major=self.time_major if time_major is None else time_major, forward_kwargs=extra,
        backward_kwargs=extra)


def LSTM(hidden_size: int, input_size: int, *, rngs: nnx.Rngs, **kwargs: Any) -> CellModule:  # pylint: disable=invalid-name
  """``CellModule(jaxrnn.lstm(hidden_size, **kwargs), input_size, rngs=rngs)``."""
  return CellModule(jaxrnn.lstm(hidden_size, **kwargs), input_size, rngs=rngs)


def GRU(hidden_size: int, input_size: int, *, rngs: nnx.Rngs, **kwargs: Any) -> CellModule:  # pylint: disable=invalid-name
  """``CellModule(jaxrnn.gru(hidden_size, **kwargs), input_size, rngs=rngs)``."""
  return CellModule(jaxrnn.gru(hidden_size, **kwargs), input_size, rngs=rngs)


def SimpleRNN(hidden_size: int, input_size: int, *, rngs: nnx.Rngs, **kwargs: Any) -> CellModule:  # pylint: disable=invalid-name
  """``CellModule(jaxrnn.simple_rnn(hidden_size, **kwargs), input_size, rngs=rngs)``."""
  return CellModule(jaxrnn.simple_rnn(hidden_size, **kwargs), input_size, rngs=rngs)


__all__ = ["CellModule", "RNN", "Bidirectional", "LSTM", "GRU", "SimpleRNN"]
