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
from jaxrnn import _optional
from jaxrnn.flax import _tree
from jaxrnn.types import Cell

try:
  import flax.linen as nn
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

  def __post_init__(self):
    if not isinstance(self.cell, Cell):
      raise TypeError(f"cell must be a jaxrnn.Cell, got {type(self.cell).__name__}")
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

    jaxrnn carries are deterministic, so ``rng`` is not used (it is accepted for Flax's interface). When the
    module is bound to existing params they are used (a learned initial carry reads them); otherwise (at
    ``init``, before params exist) zeros of the params' shapes stand in, which is exact for every cell whose
    initial carry reads only sizes and dtypes.
    """
    del rng
    nf = self.cell.input_ndim
    size = _tree.input_size(input_shape, nf)
    template = _tree.param_template(self.cell, size)
    names = list(_tree.to_dict(template))
    p = None
    if self.scope is not None and all(self.has_variable("params", k) for k in names):
      p = _tree.from_dict({k: self.get_variable("params", k) for k in names}, template)
    if p is None:
      p = _tree.zeros_like_spec(template)
    return self.cell.initial_carry(p, tuple(input_shape[:len(input_shape) - nf]))

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


class RNN(nn.Module):
  """A jaxrnn cell over a sequence with :func:`jaxrnn.unroll`: one ``lax.scan`` (input projection hoisted on GPU/TPU).

  Params live under ``"cell"``, exactly as in ``flax.linen.RNN(CellModule(cell))``, so the two layers share
  their variables. Unlike Flax's ``RNN``, outputs at padded steps (``t >= seq_lengths``) are zeros, the
  returned carry is always the one at each sequence's last valid step, and ``reverse=True`` keeps the outputs
  in input order (Flax's ``keep_order=True``).

  Attributes:
    cell: a :class:`jaxrnn.Cell` or a :class:`CellModule`.
    reverse: run each sequence backwards from its own last valid step.
    return_carry: return ``(carry, hs)`` instead of ``hs``.
    time_major: inputs ``[T, *B, *F]`` instead of ``[*B, T, *F]``.
    unroll: steps per ``lax.scan`` iteration.
    mode: :func:`jaxrnn.unroll`'s ``mode``.
  """

  cell: Union[Cell, CellModule]
  reverse: bool = False
  return_carry: bool = False
  time_major: bool = False
  unroll: int = 1
  mode: str = "auto"

  @nn.compact
  def __call__(self, inputs: jax.Array, *, initial_carry: Any = None, seq_lengths: Optional[jax.Array] = None,
               return_carry: Optional[bool] = None, reverse: Optional[bool] = None,
               time_major: Optional[bool] = None):
    """Runs the cell over ``inputs: [*B, T, *F]`` (or ``[T, *B, *F]``); returns ``hs`` or ``(carry, hs)``.

    Args:
      inputs: the input sequence.
      initial_carry: the carry at ``t = 0`` (default: the cell's ``initial_carry`` for the batch shape).
      seq_lengths: optional ``int[*B]`` lengths of right-padded sequences.
      return_carry, reverse, time_major: override the module's attributes for this call.
    """
    return_carry = self.return_carry if return_carry is None else return_carry
    reverse = self.reverse if reverse is None else reverse
    time_major = self.time_major if time_major is None else time_major
    mod = _as_module(self.cell, "cell")
    p = mod.params(_tree.input_size(inputs.shape, mod.cell.input_ndim))
    return _tree.run_layer(mod.cell, p, inputs, initial_carry=initial_carry, seq_lengths=seq_lengths,
                           reverse=reverse, time_major=time_major, unroll=self.unroll, mode=self.mode,
                           return_carry=return_carry)


class Bidirectional(nn.Module):
  """Two :class:`RNN` layers, one forwards and one backwards (outputs in input order), outputs merged.

  Attributes:
    forward_rnn: an :class:`RNN` (its ``reverse`` is ignored: it runs forwards).
    backward_rnn: an :class:`RNN` (it runs backwards from each sequence's last valid step).
    merge_fn: combines the two output sequences (default: concatenate features, ``[..., 2H]``).
    time_major: inputs ``[T, *B, *F]`` instead of ``[*B, T, *F]``.
    return_carry: return ``((carry_fwd, carry_bwd), hs)`` instead of ``hs``.
  """

  forward_rnn: RNN
  backward_rnn: RNN
  merge_fn: Callable[[jax.Array, jax.Array], jax.Array] = _tree.concatenate
  time_major: bool = False
  return_carry: bool = False

  def __call__(self, inputs: jax.Array, *, initial_carry: Any = None, seq_lengths: Optional[jax.Array] = None,
               return_carry: Optional[bool] = None, time_major: Optional[bool] = None):
    """``inputs: [*B, T, *F]`` -> merged ``hs`` (or ``((carry_fwd, carry_bwd), hs)``)."""
    return _tree.run_bidirectional(
        self.forward_rnn, self.backward_rnn, self.merge_fn, inputs, initial_carry=initial_carry,
        seq_lengths=seq_lengths, return_carry=self.return_carry if return_carry is None else return_carry,
        time_major=self.time_major if time_major is None else time_major)


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
