r"""Equinox interop: jaxrnn cells as ``eqx.Module``\ s, and exact weights to and from ``eqx.nn.LSTMCell``/``GRUCell``.

Equinox is an optional dependency (``pip install 'jaxrnn[equinox]'``); ``import jaxrnn`` never imports it.

:class:`CellModule` and :class:`RNN` hold a jaxrnn cell (a static field: its functions) and its params (array
leaves), so they work with ``eqx.filter_jit``, ``eqx.filter_grad`` and ``eqx.filter_vmap`` like any Equinox
module. :class:`RNN` runs the cell over a sequence with :func:`jaxrnn.unroll` (one ``lax.scan``, the run options,
``seq_lengths``), where Equinox users write their own scan over ``eqx.nn.LSTMCell``.

Layout (Equinox 0.13): ``eqx.nn.LSTMCell`` has ``weight_ih: [4H, F]``, ``weight_hh: [4H, H]``, ``bias: [4H]``
(gates ``i, f, g, o``, jaxrnn's order) and computes one example, ``(h, c) = cell(x, (h, c))``;
``eqx.nn.GRUCell`` has ``weight_ih: [3H, F]``, ``weight_hh: [3H, H]``, ``bias: [3H]`` (input side) and
``bias_n: [H]`` (inside the reset gate's product: jaxrnn's ``b_hn``), gates ``r, z, n``, ``h' = (1 - z) n + z h``:
jaxrnn's ``gru(reset_after=True)``. Kernels are transposed (jaxrnn stores ``[in, out]``), nothing else changes.

Example:

  >>> import jax, jax.numpy as jnp, equinox as eqx, jaxrnn
  >>> from jaxrnn.interop import equinox as jeqx
  >>> eqx_cell = eqx.nn.LSTMCell(3, 4, key=jax.random.key(0))
  >>> cell, params = jeqx.from_equinox(eqx_cell)                  # jaxrnn.lstm(4) and LSTMParams
  >>> layer = jeqx.RNN(cell, params=params)
  >>> carry, hs = layer(jnp.ones((2, 5, 3)), seq_lengths=jnp.array([5, 2]))
  >>> hs.shape
  (2, 5, 4)
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import jax
import jax.numpy as jnp

from jaxrnn import _optional
from jaxrnn.cells.gru import GRUParams, gru
from jaxrnn.cells.lstm import LSTMParams, lstm
from jaxrnn.types import Cell, RunOptions
from jaxrnn.unroll import unroll

try:
  import equinox as eqx
except ImportError as e:
  raise _optional.missing("jaxrnn.interop.equinox", "equinox", "equinox") from e


class CellModule(eqx.Module):
  """A jaxrnn cell and its params as an Equinox module: one step, ``(carry, x) -> (carry, h)``.

  Args:
    cell: the jaxrnn cell (a static field).
    input_size: with ``key``: the per-example input feature size; the params are ``cell.init(key, input_size)``.
    key: a PRNG key for ``cell.init``.
    params: instead of ``input_size`` and ``key``: existing params of ``cell``.

  Attributes:
    cell: the cell.
    params: its params (a NamedTuple of arrays: what ``eqx.filter_grad`` differentiates).
  """

  cell: Cell = eqx.field(static=True)
  params: Any

  def __init__(self, cell: Cell, input_size: Any = None, *, key: Optional[jax.Array] = None, params: Any = None):
    self.cell, self.params = _cell_and_params(cell, input_size, key, params)

  def __call__(self, carry: Any, x: jax.Array) -> Tuple[Any, jax.Array]:
    """One step, ``cell.step(params, carry, x)``: ``x: [*B, *F]`` -> ``(carry, h: [*B, H])``."""
    return self.cell.step(self.params, carry, x)

  def initial_carry(self, batch_shape: Tuple[int, ...] = (), dtype: Any = None, *,
                    key: Optional[jax.Array] = None) -> Any:
    """``cell.initial_carry(params, batch_shape, dtype, key=key)`` (``key``: dropout masks; ``None``: none)."""
    return self.cell.initial_carry(self.params, batch_shape, dtype, key=key)


class RNN(eqx.Module):
  """A jaxrnn cell over a sequence with :func:`jaxrnn.unroll`, as an Equinox module.

  Args:
    cell: the jaxrnn cell (a static field), e.g. ``jaxrnn.lstm(8)`` or a ``jaxrnn.stack``.
    input_size, key, params: as :class:`CellModule`.
    reverse, time_major, unroll, remat, hoist, options, mode: :func:`jaxrnn.unroll`'s arguments (static fields).

  Attributes:
    cell, params: as :class:`CellModule`.
  """

  cell: Cell = eqx.field(static=True)
  params: Any
  reverse: bool = eqx.field(static=True)
  time_major: bool = eqx.field(static=True)
  unroll: Any = eqx.field(static=True)
  remat: Any = eqx.field(static=True)
  hoist: Optional[bool] = eqx.field(static=True)
  options: Optional[RunOptions] = eqx.field(static=True)
  mode: str = eqx.field(static=True)

  def __init__(self, cell: Cell, input_size: Any = None, *, key: Optional[jax.Array] = None, params: Any = None,
               reverse: bool = False, time_major: bool = False, unroll: Any = None, remat: Any = False,
               hoist: Optional[bool] = None, options: Optional[RunOptions] = None, mode: str = "auto"):
    self.cell, self.params = _cell_and_params(cell, input_size, key, params)
    self.reverse, self.time_major, self.unroll, self.remat = reverse, time_major, unroll, remat
    self.hoist, self.options, self.mode = hoist, options, mode

  def __call__(self, xs: Any, *, carry: Any = None, seq_lengths: Optional[jax.Array] = None,
               key: Optional[jax.Array] = None) -> Tuple[Any, jax.Array]:
    """``(final_carry, hs)`` of :func:`jaxrnn.unroll` over ``xs: [*B, T, *F]`` (``[T, *B, *F]`` if time-major).

    Args:
      xs: the inputs.
      carry: the initial carry (``None``: the cell's, for the batch shape of ``xs``).
      seq_lengths: optional ``int[*B]`` lengths of right-padded sequences.
      key: with ``carry=None``, the key of the cell's dropout masks (``None``: no dropout, inference).
    """
    return unroll(self.cell, self.params, carry, xs, seq_lengths=seq_lengths, reverse=self.reverse,
                  time_major=self.time_major, unroll=self.unroll, remat=self.remat, hoist=self.hoist,
                  options=self.options, mode=self.mode, key=key)


def _cell_and_params(cell: Cell, input_size: Any, key: Any, params: Any) -> Tuple[Cell, Any]:
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a jaxrnn.Cell, got {type(cell).__name__}")
  if params is None:
    if input_size is None or key is None:
      raise ValueError("give input_size and key (to initialise the params), or params=...")
    return cell, cell.init(key, input_size)
  if input_size is not None or key is not None:
    raise ValueError("give either input_size and key, or params, not both")
  return cell, params


# Weights.


def _kind(module: Any) -> str:
  if isinstance(module, eqx.nn.LSTMCell):
    return "lstm"
  if isinstance(module, eqx.nn.GRUCell):
    return "gru"
  raise TypeError(f"expected an eqx.nn.LSTMCell or eqx.nn.GRUCell, got {type(module).__name__}")


def from_equinox(module: Any) -> Tuple[Cell, Any]:
  """``(cell, params)`` computing an ``eqx.nn.LSTMCell`` or ``eqx.nn.GRUCell`` exactly.

  Returns:
    ``(jaxrnn.lstm(H, use_bias=...), LSTMParams)`` or ``(jaxrnn.gru(H, use_bias=...), GRUParams)``, params in the
    module's dtype. The Equinox carry ``(h, c)`` is ``jaxrnn.LSTMCarry(h=h, c=c)``; a GRU's ``h`` is
    ``GRUCarry(h)``.
  """
  kind = _kind(module)
  H, dt = module.hidden_size, module.weight_hh.dtype
  w_i, w_h = jnp.asarray(module.weight_ih).T, jnp.asarray(module.weight_hh).T
  if kind == "lstm":
    return (lstm(H, use_bias=module.use_bias, param_dtype=dt),
            LSTMParams(w_i=w_i, w_h=w_h, b=module.bias if module.use_bias else None))
  return (gru(H, use_bias=module.use_bias, param_dtype=dt),
          GRUParams(w_i=w_i, w_h=w_h, b=module.bias if module.use_bias else None,
                    b_hn=module.bias_n if module.use_bias else None))


def to_equinox(cell: Cell, params: Any) -> Any:
  """The ``eqx.nn.LSTMCell`` / ``eqx.nn.GRUCell`` computing a jaxrnn ``lstm`` / ``gru`` cell exactly.

  Args:
    cell: ``jaxrnn.lstm(H)`` or ``jaxrnn.gru(H)`` (``reset_after=True``) with the default activations.
    params: its params.

  Raises:
    ValueError: a cell Equinox's cells do not compute (read from ``cell.config``: another factory, a custom
      activation, ``gru(reset_after=False)``, ``lstm(variant=...)``), or a GRU with ``b`` but no ``b_hn``.
  """
  cfg = cell.config if isinstance(cell, Cell) else None
  if cfg is None or cfg.factory not in ("lstm", "gru"):
    raise ValueError(f"to_equinox maps jaxrnn.lstm and jaxrnn.gru cells to eqx.nn.LSTMCell/GRUCell, got "
                     f"{getattr(cell, 'name', type(cell).__name__)!r} (factory "
                     f"{cfg.factory if cfg is not None else None!r})")
  wrong = [f"{k}={cfg.get(k)!r}" for k, want in (("activation", "tanh"), ("gate_activation", "sigmoid"))
           if cfg.get(k) != want]
  if cfg.factory == "gru" and not cfg.get("reset_after"):
    wrong.append("reset_after=False")
  if wrong:
    raise ValueError(f"eqx.nn.{'LSTMCell' if cfg.factory == 'lstm' else 'GRUCell'} has tanh/sigmoid and (GRU) the "
                     f"reset gate after the recurrent product; this cell has {', '.join(wrong)}")
  use_bias = params.b is not None
  F, H = params.w_i.shape[0], params.w_h.shape[0]
  factory = eqx.nn.LSTMCell if cfg.factory == "lstm" else eqx.nn.GRUCell
  dt = params.w_h.dtype
  template = eqx.filter_eval_shape(lambda: factory(F, H, use_bias=use_bias, dtype=dt, key=jax.random.key(0)))
  arrays = {"weight_ih": params.w_i.T, "weight_hh": params.w_h.T}
  if use_bias:
    arrays["bias"] = params.b
    if cfg.factory == "gru":
      arrays["bias_n"] = jnp.zeros((H,), dt) if params.b_hn is None else params.b_hn
  names = list(arrays)
  return eqx.tree_at(lambda m: [getattr(m, k) for k in names], template, [jnp.asarray(arrays[k]) for k in names],
                     is_leaf=lambda x: x is None)


__all__ = ["CellModule", "RNN", "from_equinox", "to_equinox"]
