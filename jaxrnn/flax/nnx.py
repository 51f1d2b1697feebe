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
from jaxrnn import _optional
from jaxrnn.flax import _tree
from jaxrnn.types import Cell

try:
  from flax import nnx
except ImportError as e:
  raise _optional.missing("jaxrnn.flax.nnx", "flax", "flax") from e


def _is_variable(x: Any) -> bool:
  return isinstance(x, nnx.Variable)


class CellModule(nnx.RNNCellBase):
  """Any :class:`jaxrnn.Cell` as a Flax NNX recurrent cell.

  Args:
    cell: the jaxrnn cell (e.g. ``jaxrnn.gru(8)``).
    input_size: the per-example input feature size ``F`` (a tuple for cells with several feature axes).
    rngs: ``nnx.Rngs``; ``rngs.params()`` is the key given to ``cell.init``.
    params: instead of ``input_size`` and ``rngs``: existing params of ``cell`` (e.g. converted from a Flax
      cell with :mod:`jaxrnn.flax.convert`) to wrap as ``nnx.Param``.

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

  def __init__(self, cell: Cell, input_size: Any = None, *, rngs: Optional[nnx.Rngs] = None, params: Any = None):
    if not isinstance(cell, Cell):
      raise TypeError(f"cell must be a jaxrnn.Cell, got {type(cell).__name__}")
    if params is None:
      if input_size is None or rngs is None:
        raise ValueError("CellModule needs input_size and rngs (or existing params=...)")
      params = cell.init(rngs.params(), input_size)
    elif input_size is not None or rngs is not None:
      raise ValueError("give either input_size and rngs, or params, not both")
    self.cell = cell
    self.params = nnx.data(jax.tree.map(nnx.Param, params))

  def cell_params(self) -> Any:
    """The params as the cell's NamedTuple of arrays, ready for the functional API."""
    return jax.tree.map(lambda v: v[...], self.params, is_leaf=_is_variable)

  def __call__(self, carry: Any, x: jax.Array) -> tuple[Any, jax.Array]:  # type: ignore[override]
    """One step: ``(carry, x: [*B, *F]) -> (carry, h: [*B, H])``, the cell's ``step``."""
    return self.cell.step(self.cell_params(), carry, x)

  def initialize_carry(self, input_shape: tuple[int, ...], rngs: Any = None, carry_init: Any = None) -> Any:
    """The cell's ``initial_carry`` for one step's input shape ``[*B, *F]`` (``rngs`` is not used)."""
    del rngs
    if carry_init is not None:
      raise ValueError("carry_init is not supported: a jaxrnn cell's initial_carry defines the carry")
    nf = self.cell.input_ndim
    return self.cell.initial_carry(self.cell_params(), tuple(input_shape[:len(input_shape) - nf]))

  @property
  def num_feature_axes(self) -> int:
    return self.cell.input_ndim


class RNN(nnx.Module):
  """A :class:`CellModule` over a sequence with :func:`jaxrnn.unroll`: one ``lax.scan`` (input projection hoisted
  on GPU/TPU).

  As in ``jaxrnn.flax.linen.RNN``: outputs at padded steps are zeros, the returned carry is the one at each
  sequence's last valid step, and ``reverse=True`` keeps outputs in input order.

  Args:
    cell: a :class:`CellModule`.
    reverse: run each sequence backwards from its own last valid step.
    return_carry: return ``(carry, hs)`` instead of ``hs``.
    time_major: inputs ``[T, *B, *F]`` instead of ``[*B, T, *F]``.
    unroll: steps per ``lax.scan`` iteration.
    mode: :func:`jaxrnn.unroll`'s ``mode``.
  """

  def __init__(self, cell: CellModule, *, reverse: bool = False, return_carry: bool = False,
               time_major: bool = False, unroll: int = 1, mode: str = "auto"):
    if not isinstance(cell, CellModule):
      raise TypeError(f"cell must be a jaxrnn.flax.nnx.CellModule, got {type(cell).__name__}")
    self.cell = cell
    self.reverse = reverse
    self.return_carry = return_carry
    self.time_major = time_major
    self.unroll = unroll
    self.mode = mode

  def __call__(self, inputs: jax.Array, *, initial_carry: Any = None, seq_lengths: Optional[jax.Array] = None,
               return_carry: Optional[bool] = None, reverse: Optional[bool] = None,
               time_major: Optional[bool] = None):
    """Runs the cell over ``inputs: [*B, T, *F]`` (or ``[T, *B, *F]``); returns ``hs`` or ``(carry, hs)``."""
    return_carry = self.return_carry if return_carry is None else return_carry
    reverse = self.reverse if reverse is None else reverse
    time_major = self.time_major if time_major is None else time_major
    return _tree.run_layer(self.cell.cell, self.cell.cell_params(), inputs, initial_carry=initial_carry,
                           seq_lengths=seq_lengths, reverse=reverse, time_major=time_major, unroll=self.unroll,
                           mode=self.mode, return_carry=return_carry)


class Bidirectional(nnx.Module):
  """Two :class:`RNN` layers, one forwards and one backwards (outputs in input order), outputs merged.

  Args:
    forward_rnn: an :class:`RNN` (run forwards).
    backward_rnn: an :class:`RNN` (run backwards from each sequence's last valid step).
    merge_fn: combines the two output sequences (default: concatenate features).
    time_major: inputs ``[T, *B, *F]``.
    return_carry: return ``((carry_fwd, carry_bwd), hs)``.
  """

  def __init__(self, forward_rnn: RNN, backward_rnn: RNN, *,
               merge_fn: Callable[[jax.Array, jax.Array], jax.Array] = _tree.concatenate, time_major: bool = False,
               return_carry: bool = False):
    self.forward_rnn = forward_rnn
    self.backward_rnn = backward_rnn
    self.merge_fn = merge_fn
    self.time_major = time_major
    self.return_carry = return_carry

  def __call__(self, inputs: jax.Array, *, initial_carry: Any = None, seq_lengths: Optional[jax.Array] = None,
               return_carry: Optional[bool] = None, time_major: Optional[bool] = None):
    """``inputs: [*B, T, *F]`` -> merged ``hs`` (or ``((carry_fwd, carry_bwd), hs)``)."""
    return _tree.run_bidirectional(
        self.forward_rnn, self.backward_rnn, self.merge_fn, inputs, initial_carry=initial_carry,
        seq_lengths=seq_lengths, return_carry=self.return_carry if return_carry is None else return_carry,
        time_major=self.time_major if time_major is None else time_major)


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
