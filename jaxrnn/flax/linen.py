"""jaxrnn cells as Flax linen modules, and a sequence layer running the jaxrnn unroll engine.

:class:`CellModule` wraps ANY :class:`jaxrnn.Cell` as a ``flax.linen.RNNCellBase``: its params are created with
``self.param`` from the cell's functional ``init`` (one Flax param per field of the params NamedTuple, so
``{"params": {"w_i": ..., "w_h": ..., "b": ...}}``), ``__call__(carry, x) -> (carry, h)`` is the cell's ``step``,
and ``initialize_carry(rng, input_shape)`` / ``num_feature_axes`` make it work inside ``flax.linen.RNN`` and
``flax.linen.Bidirectional`` unchanged. :class:`RNN` runs a cell over a sequence with :func:`jaxrnn.unroll`
(one ``lax.scan``, the input projection hoisted out of the loop on GPU/TPU) instead of a lifted ``nn.scan``.

Example:

  >>> import jax, jax.numpy as jnp, jaxrnn
  >>> from jaxrnn.flax import linen as jl
  >>> layer = jl.RNN(jaxrnn.lstm(4))
  >>> xs = jnp.ones((2, 5, 3), jnp.float32)                     # [B, T, F]
  >>> variables = layer.init(jax.random.key(0), xs)
  >>> sorted(variables["params"]["cell"])
  ['b', 'w_h', 'w_i']
  >>> layer.apply(variables, xs, seq_lengths=jnp.array([5, 2])).shape
  (2, 5, 4)
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import jax

import jaxrnn
from jaxrnn import _checks
from jaxrnn import _optional
from jaxrnn import sequences
from jaxrnn.flax import _tree
from jaxrnn.types import Cell, RunOptions, carry_batch_shape

try:
  import flax.linen as nn
  from flax.core import FrozenDict
except ImportError as e:
  raise _optional.missing("jaxrnn.flax.linen", "flax", "flax") from e


class CellModule(nn.RNNCellBase):
  """Any :class:`jaxrnn.Cell` as a Flax linen recurrent cell.

  Attributes:
    cell: the jaxrnn cell (e.g. ``jaxrnn.gru(8)``).

  Params are created lazily from the first input's feature shape (``x.shape[-cell.input_ndim:]``), one Flax
  param per field of the cell's params NamedTuple (fields that are ``None``, such as a disabled bias, are not
  stored; nested params become nested dicts). :meth:`params` returns them as the cell's NamedTuple, ready for
  the functional API (``cell.step``, ``jaxrnn.unroll``).

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn, flax.linen as nn
    >>> from jaxrnn.flax.linen import CellModule
    >>> layer = nn.RNN(CellModule(jaxrnn.gru(4)))                 # Flax's own RNN layer
    >>> xs = jnp.ones((2, 5, 3), jnp.float32)
    >>> variables = layer.init(jax.random.key(0), xs)
    >>> layer.apply(variables, xs).shape
    (2, 5, 4)
  """

  cell: Cell
  carry_init: Optional[Callable[..., Any]] = None
  deterministic: Optional[bool] = None

  def __post_init__(self):
    _checks.cell("cell", self.cell)
    super().__post_init__()

  @nn.compact
  def params(self, input_size: Any) -> Any:
    """The cell's params NamedTuple for inputs with feature shape ``input_size`` (created at init)."""
    template = _tree.param_template(self.cell, input_size)
    names = list(_tree.to_dict(template))
    if all(self.has_variable("params", k) for k in names):
      values = dict.fromkeys(names)  # Stored already: the init functions below are never called.
    else:
      values = _tree.to_dict(self.cell.init(self.make_rng("params"), input_size))
    stored = {k: self.param(k, lambda _, v=values[k]: v) for k in names}
    return _tree.from_dict(stored, template)

  def __call__(self, carry: Any, x: jax.Array) -> tuple[Any, jax.Array]:
    """One step: ``(carry, x: [*B, *F]) -> (carry, h: [*B, H])``, the cell's ``step``."""
    p = self.params(_tree.input_size(x.shape, self.cell.input_ndim))
    return self.cell.step(p, carry, x)

  @nn.nowrap
  def initialize_carry(self, rng: Any, input_shape: tuple[int, ...]) -> Any:
    """The cell's ``initial_carry`` for one step's input shape ``[*B, *F]``.

    ``rng`` is the key of ``carry_init`` (Flax's ``init_key``); without ``carry_init`` the carry is the cell's
    own ``initial_carry``, which draws nothing from it. The dropout key of a jaxrnn dropout cell (see
    :meth:`carry_for`) comes from the ``"dropout"`` rng stream, as in Flax. When the module is bound to existing
    params they are used (a learned initial carry reads them); otherwise (at ``init``, before params exist)
    zeros of the params' shapes stand in, which is exact for every cell whose initial carry reads only sizes and
    dtypes.
    """
    nf = self.cell.input_ndim
    size = _tree.input_size(input_shape, nf)
    template = _tree.param_template(self.cell, size)
    names = list(_tree.to_dict(template))
    p = None
    if self.scope is not None and all(self.has_variable("params", k) for k in names):
      p = _tree.from_dict({k: self.get_variable("params", k) for k in names}, template)
    if p is None:
      p = _tree.zeros_like_spec(template)
    return self.carry_for(p, input_shape, init_key=rng)

  @nn.nowrap
  def carry_for(self, params: Any, input_shape: tuple[int, ...], *, init_key: Any = None,
                deterministic: Optional[bool] = None) -> Any:
    """The initial carry for one step's input shape ``[*B, *F]`` from the cell's ``params``.

    Dropout follows Flax's conventions: ``deterministic`` (this argument, else the module's attribute) ``True``
    means no dropout; ``False`` draws the key of the cell's dropout masks (:func:`jaxrnn.dropout`,
    ``jaxrnn.stack(..., dropout=p)``, zoneout...) from the ``"dropout"`` rng stream (``apply(...,
    rngs={"dropout": key})``), and ``None`` does so when that stream is given. ``carry_init(key, shape, dtype)``
    (as Flax's cells' ``carry_init``) then replaces every floating leaf, with keys split from ``init_key``
    (``None``: ``jax.random.key(0)``, Flax's default ``init_key``).
    """
    det = _tree.resolve_deterministic("deterministic", deterministic, self.deterministic)
    nf = self.cell.input_ndim
    key = None
    if det is False or (det is None and self.scope is not None and self.has_rng("dropout")):
      if self.scope is None or not self.has_rng("dropout"):
        raise ValueError("deterministic=False needs a 'dropout' rng stream: apply(variables, x, "
                         "rngs={'dropout': key}) (or deterministic=True for no dropout)")
      key = self.make_rng("dropout")
    batch, features = tuple(input_shape[:len(input_shape) - nf]), tuple(input_shape[len(input_shape) - nf:])
    carry = self.cell.initial_carry(params, carry_batch_shape(self.cell, batch, features), key=key)
    if self.carry_init is not None:
      carry = _tree.apply_carry_init(carry, self.carry_init, jax.random.key(0) if init_key is None else init_key)
    return carry

  @property
  def num_feature_axes(self) -> int:
    return self.cell.input_ndim


def to_flax_params(params: Any) -> dict:
  """A cell's params NamedTuple -> the dict :class:`CellModule` stores (``{"w_i": ..., "w_h": ..., "b": ...}``).

  Use it to load existing (e.g. converted) params: ``{"params": to_flax_params(p)}`` for a bare
  :class:`CellModule`, ``{"params": {"cell": to_flax_params(p)}}`` for :class:`RNN` or ``flax.linen.RNN``.
  """
  return _tree.to_dict(params)


def from_flax_params(cell: Cell, flax_params: Any, input_size: Any) -> Any:
  """Inverse of :func:`to_flax_params`: the dict a :class:`CellModule` of ``cell`` stores -> the NamedTuple."""
  return _tree.from_dict(flax_params, _tree.param_template(cell, input_size))


def _as_module(cell: Union[Cell, CellModule], name: str) -> CellModule:
  if isinstance(cell, CellModule):
    return cell
  if isinstance(cell, Cell):
    return CellModule(cell, name=name)
  raise TypeError(f"cell must be a jaxrnn.Cell or a jaxrnn.flax.linen.CellModule, got {type(cell).__name__}")


_SCAN_DEFAULTS = {"variable_axes": FrozenDict(), "variable_broadcast": "params", "variable_carry": False,
                  "split_rngs": FrozenDict({"params": False})}


class RNN(nn.Module):
  """A jaxrnn cell over a sequence with :func:`jaxrnn.unroll`: one ``lax.scan`` (input projection hoisted on GPU/TPU).

  A drop-in for ``flax.linen.RNN``: the same attributes and call arguments, and params under ``"cell"`` exactly as
  in ``flax.linen.RNN(CellModule(cell))``, so the two layers share their variables. ``reverse=True`` returns the
  outputs in processing order unless ``keep_order=True``, as Flax does. The differences from Flax (listed in
  docs/flax.md): outputs at padded steps (``t >= seq_lengths``) are zeros, the returned carry is always the one at each
  sequence's last valid step, the run options below exist, and a jaxrnn cell's dropout follows ``deterministic``.

  A subclass of :class:`CellModule` (one that overrides ``__call__`` to add, say, recurrent dropout with
  ``nn.Dropout``) runs through Flax's own ``flax.linen.RNN`` (a lifted ``nn.scan`` of its ``__call__``), with
  ``unroll`` and the ``nn.scan`` arguments; ``remat``, ``hoist`` and ``mode="sequence"`` then raise, as its
  ``__call__`` is opaque to jaxrnn. Padded outputs are zeros on that path too.

  Attributes:
    cell: a :class:`jaxrnn.Cell` or a :class:`CellModule` (or a subclass).
    time_major: inputs ``[T, *B, *F]`` instead of ``[*B, T, *F]``.
    return_carry: return ``(carry, hs)`` instead of ``hs``.
    reverse: run each sequence backwards from its own last valid step.
    keep_order: with ``reverse``, return the outputs in input order (else in processing order, as Flax does).
    unroll: steps per ``lax.scan`` iteration (``None``: the backend's default, ``jaxrnn.sequences.default_unroll()``).
    remat, hoist, options: :func:`jaxrnn.unroll`'s run options (memory-bounded backprop, the input projection
      before or inside the loop, or one :class:`jaxrnn.RunOptions`).
    mode: :func:`jaxrnn.unroll`'s ``mode``.
    deterministic: ``True``: no dropout; ``False``: a jaxrnn dropout cell draws its masks from the ``"dropout"``
      rng stream; ``None`` (default): dropout iff that stream is given (``apply(..., rngs={"dropout": key})``).
    variable_axes, variable_broadcast, variable_carry, split_rngs: ``nn.scan``'s arguments, for a
      :class:`CellModule` subclass only (a jaxrnn cell has no Flax variables or rng streams in its step: other
      values raise).
  """

  cell: Union[Cell, CellModule]
  time_major: bool = False
  return_carry: bool = False
  reverse: bool = False
  keep_order: bool = False
  unroll: Union[int, bool, None] = None
  remat: Union[bool, int] = False
  hoist: Optional[bool] = None
  options: Optional[RunOptions] = None
  mode: str = "auto"
  deterministic: Optional[bool] = None
  variable_axes: Any = FrozenDict()
  variable_broadcast: Any = "params"
  variable_carry: Any = False
  split_rngs: Any = FrozenDict({"params": False})

  @nn.compact
  def __call__(self, inputs: jax.Array, *, initial_carry: Any = None, init_key: Any = None,
               seq_lengths: Optional[jax.Array] = None, return_carry: Optional[bool] = None,
               time_major: Optional[bool] = None, reverse: Optional[bool] = None, keep_order: Optional[bool] = None,
               deterministic: Optional[bool] = None):
    """Runs the cell over ``inputs: [*B, T, *F]`` (or ``[T, *B, *F]``); returns ``hs`` or ``(carry, hs)``.

    Args:
      inputs: the input sequence.
      initial_carry: the carry at ``t = 0`` (default: the cell's, see :meth:`CellModule.carry_for`). A carry given
        holds its own dropout keys (``cell.initial_carry(params, batch_shape, key=...)``): the layer draws none.
      init_key: the key of the cell module's ``carry_init`` (as Flax's ``init_key``).
      seq_lengths: optional ``int[*B]`` lengths of right-padded sequences.
      return_carry, time_major, reverse, keep_order, deterministic: override the module's attributes.
    """
    return_carry = self.return_carry if return_carry is None else return_carry
    time_major = self.time_major if time_major is None else time_major
    reverse = self.reverse if reverse is None else reverse
    keep_order = self.keep_order if keep_order is None else keep_order
    det = _tree.resolve_deterministic("deterministic", deterministic, self.deterministic)
    mod = _as_module(self.cell, "cell")
    nf = mod.cell.input_ndim
    batch, shape = _tree.step_shape(inputs, nf, time_major)
    scan_args = {k: getattr(self, k) for k in _SCAN_DEFAULTS}
    if type(mod) is not CellModule:  # pylint: disable=unidiomatic-typecheck
      return self._run_subclass(mod, inputs, scan_args, det, initial_carry=initial_carry, init_key=init_key,
                                seq_lengths=seq_lengths, return_carry=return_carry, time_major=time_major,
                                reverse=reverse, keep_order=keep_order, batch_ndim=len(batch))
    changed = sorted(k for k, v in scan_args.items() if v != _SCAN_DEFAULTS[k])
    if changed:
      raise ValueError(f"{changed} are nn.scan arguments for a CellModule subclass whose __call__ uses Flax "
                       f"variables or rng streams; a jaxrnn cell's step uses none (its dropout masks come from "
                       f"the key in its carry: see deterministic)")
    p = mod.params(_tree.input_size(inputs.shape, nf))
    if initial_carry is None:
      initial_carry = mod.carry_for(p, shape, init_key=init_key, deterministic=det)
    elif det is False:
      raise ValueError("deterministic=False with an initial_carry: the layer draws no dropout key for a carry "
                       "given; build it with cell.initial_carry(params, batch_shape, key=...)")
    return _tree.run_layer(mod.cell, p, inputs, initial_carry=initial_carry, seq_lengths=seq_lengths,
                           reverse=reverse, keep_order=keep_order, time_major=time_major, mode=self.mode,
                           run_options=dict(unroll=self.unroll, remat=self.remat, hoist=self.hoist,
                                            options=self.options), return_carry=return_carry)

  def _run_subclass(self, mod: CellModule, inputs: jax.Array, scan_args: dict, det: Optional[bool], *,
                    initial_carry: Any, init_key: Any, seq_lengths: Any, return_carry: bool, time_major: bool,
                    reverse: bool, keep_order: bool, batch_ndim: int):
    """A :class:`CellModule` subclass: its ``__call__`` scanned by ``flax.linen.RNN``, padded outputs zeroed."""
    _tree.refuse_for_subclass("jaxrnn.flax.linen.RNN", mod, remat=self.remat, hoist=self.hoist,
                              options=self.options, mode=self.mode, deterministic=det)
    rnn = nn.RNN(mod, time_major=time_major, unroll=sequences.scan_unroll(self.unroll), name="scan", **scan_args)
    carry, hs = rnn(inputs, initial_carry=initial_carry, init_key=init_key, seq_lengths=seq_lengths,
                    return_carry=True, reverse=reverse, keep_order=keep_order)
    hs = _tree.zero_padding(hs, seq_lengths, batch_ndim, time_major)
    return (carry, hs) if return_carry else hs


class Bidirectional(nn.Module):
  """Two layers, one forwards and one backwards (outputs in input order), outputs merged: ``nn.Bidirectional``.

  Attributes:
    forward_rnn: an :class:`RNN` (run forwards; Flax's ``nn.RNN`` works too).
    backward_rnn: an :class:`RNN` (run backwards from each sequence's last valid step, outputs kept in order).
    merge_fn: combines the two output sequences (default: concatenate features, ``[..., 2H]``).
    time_major: inputs ``[T, *B, *F]`` instead of ``[*B, T, *F]``.
    return_carry: return ``((carry_fwd, carry_bwd), hs)`` instead of ``hs``.

  jaxrnn's :class:`RNN` also works inside ``flax.linen.Bidirectional`` (it takes Flax's call arguments).
  """

  forward_rnn: Any
  backward_rnn: Any
  merge_fn: Callable[[jax.Array, jax.Array], jax.Array] = _tree.concatenate
  time_major: bool = False
  return_carry: bool = False

  def __call__(self, inputs: jax.Array, *, initial_carry: Any = None, init_key: Any = None,
               seq_lengths: Optional[jax.Array] = None, return_carry: Optional[bool] = None,
               time_major: Optional[bool] = None, reverse: Optional[bool] = None, keep_order: Optional[bool] = None,
               deterministic: Optional[bool] = None):
    """``inputs: [*B, T, *F]`` -> merged ``hs`` (or ``((carry_fwd, carry_bwd), hs)``).

    ``reverse`` and ``keep_order`` are accepted for Flax's interface and not used (as in Flax); ``init_key`` is
    split over the two layers; ``deterministic`` is passed to both.
    """
    del reverse, keep_order
    keys = (None, None) if init_key is None else tuple(jax.random.split(init_key))
    extra = [{"init_key": k} for k in keys]
    if deterministic is not None:
      for e in extra:
        e["deterministic"] = deterministic
    return _tree.run_bidirectional(
        self.forward_rnn, self.backward_rnn, self.merge_fn, inputs, initial_carry=initial_carry,
        seq_lengths=seq_lengths, return_carry=self.return_carry if return_carry is None else return_carry,
        time_major=self.time_major if time_major is None else time_major, forward_kwargs=extra[0],
        backward_kwargs=extra[1])


# Convenience constructors: the library's cells as linen cell modules.


def LSTM(hidden_size: int, **kwargs: Any) -> CellModule:  # pylint: disable=invalid-name
  """``CellModule(jaxrnn.lstm(hidden_size, **kwargs))``; the carry is ``jaxrnn.LSTMCarry(h, c)``."""
  return CellModule(jaxrnn.lstm(hidden_size, **kwargs))


def GRU(hidden_size: int, **kwargs: Any) -> CellModule:  # pylint: disable=invalid-name
  """``CellModule(jaxrnn.gru(hidden_size, **kwargs))``; the carry is ``jaxrnn.GRUCarry(h)``."""
  return CellModule(jaxrnn.gru(hidden_size, **kwargs))


def SimpleRNN(hidden_size: int, **kwargs: Any) -> CellModule:  # pylint: disable=invalid-name
  """``CellModule(jaxrnn.simple_rnn(hidden_size, **kwargs))``; the carry is ``jaxrnn.SimpleRNNCarry(h)``."""
  return CellModule(jaxrnn.simple_rnn(hidden_size, **kwargs))


__all__ = ["to_flax_params", "from_flax_params", "CellModule", "RNN", "Bidirectional", "LSTM", "GRU", "SimpleRNN"]
