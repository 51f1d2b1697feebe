r"""Exact weight conversion between jaxrnn params and Flax's own recurrent cells (linen and NNX).

Layout differences (Flax 0.12). Kernels are ``[in, out]`` in both libraries, so they are never transposed.

* linen ``LSTMCell`` and ``OptimizedLSTMCell`` (same param names): ``ii, if, ig, io: {kernel [F, H]}`` (no input
  bias) and ``hi, hf, hg, ho: {kernel [H, H], bias [H]}`` -> ``jaxrnn.lstm``: ``w_i = [ii|if|ig|io]: [F, 4H]``,
  ``w_h = [hi|hf|hg|ho]: [H, 4H]``, ``b`` = the four recurrent biases ``[4H]``.
* linen ``GRUCell``: ``ir, iz, in: {kernel, bias}``, ``hr, hz: {kernel}``, ``hn: {kernel, bias}`` ->
  ``jaxrnn.gru`` (``reset_after=True``): ``w_i = [ir|iz|in]``, ``w_h = [hr|hz|hn]``, ``b = [ir|iz|in biases]``,
  ``b_hn`` = the ``hn`` bias.
* linen ``SimpleCell``: ``i: {kernel, bias}``, ``h: {kernel}`` -> ``jaxrnn.simple_rnn``.
* linen ``MGUCell``: ``if, in: {kernel, bias}``, ``hf: {kernel}``, ``hn: {kernel, bias}`` (``hn`` has no bias
  with ``reset_gate=False``) -> ``jaxrnn.mgu(H, variant="flax", reset_gate=...)``: ``w_i = [if|in]: [F, 2H]``,
  ``w_h = [hf|hn]: [H, 2H]``, ``b = [if|in biases]: [2H]``, ``b_hn`` = the ``hn`` bias (``None`` without a
  reset gate). Only ``variant="flax"`` computes Flax's function; ``variant="zhou"`` has the same shapes but is a
  different cell. Build the jaxrnn cell with the same ``reset_gate`` as the Flax one.
* NNX ``LSTMCell``: as linen, with ``if_`` for ``if``. NNX ``OptimizedLSTMCell``: ``dense_i: {kernel [F, 4H]}``,
  ``dense_h: {kernel [H, 4H], bias [4H]}``, already jaxrnn's fused layout.
* NNX ``GRUCell``: ``dense_i: {kernel [F, 3H], bias [3H]}``, ``dense_h: {kernel [H, 3H]}`` and NO recurrent
  candidate bias (unlike linen's ``GRUCell``): it is jaxrnn's ``gru`` with ``b_hn = 0``.
* NNX ``SimpleCell``: ``dense_i: {kernel, bias}``, ``dense_h: {kernel}`` -> ``jaxrnn.simple_rnn``.

* Gate order: Flax's LSTM is ``i, f, g, o``, GRU ``r, z, n`` and MGU ``f, n`` -- the same as jaxrnn (and
  PyTorch), so gate blocks are concatenated, never permuted. Flax keeps a bias only on one side of each sum (LSTM:
  recurrent side; GRU/MGU/Simple: input side), jaxrnn keeps one fused bias ``b``: they are the same number. The
  GRU candidate's recurrent bias (inside ``r * (h W_hn + b_hn)``; MGU: ``f * (h W_hn + b_hn)``) is jaxrnn's
  ``b_hn``; NNX's ``GRUCell`` has none, so converting a jaxrnn GRU with a nonzero ``b_hn`` to NNX raises
  ``ValueError``. NNX has no ``MGUCell`` (Flax 0.12), so MGU converts to and from linen only.
* Carry order: Flax's LSTM carry is the tuple ``(c, h)``; jaxrnn's is ``LSTMCarry(h, c)`` (named fields).
  GRU/MGU/Simple carries are the bare array ``h`` in Flax and ``GRUCarry(h)`` / ``MGUCarry(h)`` /
  ``SimpleRNNCarry(h)`` in jaxrnn.
  Use :func:`carry_from_flax` / :func:`carry_to_flax`.
* Flax's ``GRUCell`` ``z`` is the keep gate, ``h' = (1 - z) n + z h``, as in jaxrnn's ``gru`` (``reset_after=True``).
  Flax's MGU ``f`` keeps ``h`` likewise, ``h' = (1 - f) n + f h``, as in ``jaxrnn.mgu(variant="flax")``.
  Flax's ``SimpleCell(residual=True)`` has no jaxrnn equivalent. A jaxrnn cell built with ``use_bias=False``
  converts to Flax with zero biases
  (for MGU pass ``mgu_to_linen(params, reset_gate=True)``, as ``b_hn is None`` otherwise means no reset gate).

linen functions take and return the cell's own params dict (``variables["params"]`` of the cell, or
``variables["params"]["cell"]`` under ``nn.RNN``); a ``{"params": ...}`` wrapper is accepted too. NNX functions
take and return the pure dict of the cell's ``nnx.Param`` state (``nnx.to_pure_dict(nnx.state(cell, nnx.Param))``);
:func:`from_nnx` and :func:`to_nnx` do that for you on a module.

Example:

  >>> import jax, jax.numpy as jnp, jaxrnn, flax.linen as nn
  >>> from jaxrnn.flax import convert
  >>> flax_cell = nn.LSTMCell(4)
  >>> x = jnp.ones((2, 3), jnp.float32)
  >>> flax_carry = flax_cell.initialize_carry(jax.random.key(0), x.shape)
  >>> variables = flax_cell.init(jax.random.key(1), flax_carry, x)
  >>> params = convert.lstm_from_linen(variables)                      # LSTMParams(w_i, w_h, b)
  >>> carry, h = jaxrnn.lstm(4).step(params, convert.carry_from_flax(flax_carry, "lstm"), x)
  >>> (_, h_flax) = flax_cell.apply(variables, flax_carry, x)[0]
  >>> bool(jnp.allclose(h, h_flax, atol=1e-6))
  True
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxrnn import _optional
from jaxrnn.cells.gru import GRUCarry, GRUParams
from jaxrnn.cells.lstm import LSTMCarry, LSTMParams
from jaxrnn.cells.mgu import MGUCarry, MGUParams
from jaxrnn.cells.simple_rnn import SimpleRNNCarry, SimpleRNNParams

try:
  from flax import nnx
except ImportError as e:
  raise _optional.missing("jaxrnn.flax.convert", "flax", "flax") from e

_LSTM_GATES = ("i", "f", "g", "o")
_GRU_GATES = ("r", "z", "n")
_MGU_GATES = ("f", "n")


def _unwrap(p: Mapping[str, Any]) -> Mapping[str, Any]:
  if not isinstance(p, Mapping):
    raise TypeError(f"params must be a mapping (a Flax params dict), got {type(p).__name__}")
  if set(p) == {"params"}:
    return p["params"]
  return p


def _need(p: Mapping[str, Any], *keys: str) -> None:
  missing = [k for k in keys if k not in p]
  if missing:
    raise ValueError(f"params lacks {missing} (got keys {sorted(p)}); is it the right Flax cell?")


def _hidden(params: Any) -> int:
  return params.w_h.shape[0]


def _bias(b: Any, size: int, like: jax.Array) -> jax.Array:
  return jnp.zeros((size,), like.dtype) if b is None else b


def _blocks(w: jax.Array, n: int) -> list:
  return jnp.split(w, n, axis=-1)


def _simple_from(params: Mapping[str, Any], i: str, h: str) -> SimpleRNNParams:
  """``SimpleRNNParams`` from a ``SimpleCell``'s params whose input and recurrent layers are named ``i``, ``h``."""
  p = _unwrap(params)
  _need(p, i, h)
  return SimpleRNNParams(w_i=p[i]["kernel"], w_h=p[h]["kernel"], b=p[i]["bias"])


def _simple_to(params: SimpleRNNParams, i: str, h: str) -> dict:
  """The params of a ``SimpleCell`` whose input and recurrent layers are named ``i``, ``h``."""
  return {i: {"kernel": params.w_i, "bias": _bias(params.b, _hidden(params), params.w_h)}, h: {"kernel": params.w_h}}


def _from_gates(p: Mapping[str, Any], gates: Tuple[str, ...], *,
                bias_side: str) -> Tuple[jax.Array, jax.Array, jax.Array]:
  """``(w_i [F, nH], w_h [H, nH], b [nH])`` fused from linen's per-gate layers ``i<g>``, ``h<g>`` (``n`` gates);
  the biases are those of the ``bias_side`` (``"i"`` or ``"h"``) layers."""
  _need(p, *[f"i{g}" for g in gates], *[f"h{g}" for g in gates])
  fused = lambda side, leaf: jnp.concatenate([p[f"{side}{g}"][leaf] for g in gates], axis=-1)
  return fused("i", "kernel"), fused("h", "kernel"), fused(bias_side, "bias")


def _to_gates(params: Any, gates: Tuple[str, ...], *, bias_side: str) -> dict:
  """linen's per-gate layers ``i<g>``, ``h<g>`` from ``params.w_i``, ``params.w_h`` and ``params.b`` (zeros if
  ``None``), the biases on the ``bias_side`` (``"i"`` or ``"h"``) layers."""
  n = len(gates)
  b = _bias(params.b, n * _hidden(params), params.w_h)
  out = {}
  for g, wi, wh, bg in zip(gates, _blocks(params.w_i, n), _blocks(params.w_h, n), _blocks(b, n)):
    out[f"i{g}"] = {"kernel": wi}
    out[f"h{g}"] = {"kernel": wh}
    out[f"{bias_side}{g}"]["bias"] = bg
  return out


# linen


def lstm_from_linen(params: Mapping[str, Any]) -> LSTMParams:
  """linen ``LSTMCell`` / ``OptimizedLSTMCell`` params -> ``LSTMParams`` of ``jaxrnn.lstm(H)``."""
  return LSTMParams(*_from_gates(_unwrap(params), _LSTM_GATES, bias_side="h"))


def lstm_to_linen(params: LSTMParams) -> dict:
  """``LSTMParams`` -> params of linen ``LSTMCell(H)`` (also valid for ``OptimizedLSTMCell(H)``)."""
  return _to_gates(params, _LSTM_GATES, bias_side="h")


def gru_from_linen(params: Mapping[str, Any]) -> GRUParams:
  """linen ``GRUCell`` params -> ``GRUParams`` of ``jaxrnn.gru(H)`` (``reset_after=True``)."""
  p = _unwrap(params)
  return GRUParams(*_from_gates(p, _GRU_GATES, bias_side="i"), b_hn=p["hn"]["bias"])


def gru_to_linen(params: GRUParams) -> dict:
  """``GRUParams`` (of ``jaxrnn.gru(H)``, ``reset_after=True``) -> params of linen ``GRUCell(H)``."""
  out = _to_gates(params, _GRU_GATES, bias_side="i")
  out["hn"]["bias"] = _bias(params.b_hn, _hidden(params), params.w_h)
  return out


def mgu_from_linen(params: Mapping[str, Any]) -> MGUParams:
  """linen ``MGUCell`` params -> ``MGUParams`` of ``jaxrnn.mgu(H, variant="flax")``.

  ``b_hn`` is the ``hn`` bias, or ``None`` when the Flax cell has ``reset_gate=False`` (no ``hn`` bias): use
  ``jaxrnn.mgu(H, variant="flax", reset_gate=False)`` then.
  """
  p = _unwrap(params)
  return MGUParams(*_from_gates(p, _MGU_GATES, bias_side="i"), b_hn=p["hn"].get("bias"))


def mgu_to_linen(params: MGUParams, *, reset_gate: Optional[bool] = None) -> dict:
  """``MGUParams`` (of ``jaxrnn.mgu(H, variant="flax")``) -> params of linen ``MGUCell(H, reset_gate=...)``.

  Args:
    params: the jaxrnn params.
    reset_gate: the target Flax cell's ``reset_gate``; ``None`` infers it from ``params.b_hn`` (present ->
      ``True``). Pass ``True`` for a jaxrnn cell built with ``use_bias=False`` (``b_hn`` is then written as
      zeros, like the other missing biases).

  Raises:
    ValueError: ``reset_gate=False`` but ``params.b_hn`` is set (a reset-gated cell is a different function).
  """
  H = _hidden(params)
  if reset_gate is None:
    reset_gate = params.b_hn is not None
  elif not reset_gate and params.b_hn is not None:
    raise ValueError("reset_gate=False, but params.b_hn is set: these params are of a reset-gated MGU "
                     "(jaxrnn.mgu(..., reset_gate=True)), which MGUCell(reset_gate=False) cannot compute")
  out = _to_gates(params, _MGU_GATES, bias_side="i")
  if reset_gate:
    out["hn"]["bias"] = _bias(params.b_hn, H, params.w_h)
  return out


def simple_from_linen(params: Mapping[str, Any]) -> SimpleRNNParams:
  """linen ``SimpleCell`` params -> ``SimpleRNNParams`` of ``jaxrnn.simple_rnn(H)``."""
  return _simple_from(params, "i", "h")


def simple_to_linen(params: SimpleRNNParams) -> dict:
  """``SimpleRNNParams`` -> params of linen ``SimpleCell(H)``."""
  return _simple_to(params, "i", "h")


# NNX (pure dicts of the cell's nnx.Param state)


def lstm_from_nnx(state: Mapping[str, Any]) -> LSTMParams:
  """NNX ``LSTMCell`` (keys ``ii, if_, ...``) or ``OptimizedLSTMCell`` (``dense_i, dense_h``) -> ``LSTMParams``."""
  p = _unwrap(state)
  if "dense_i" in p:
    return LSTMParams(w_i=p["dense_i"]["kernel"], w_h=p["dense_h"]["kernel"], b=p["dense_h"]["bias"])
  names = {"i": "ii", "f": "if_", "g": "ig", "o": "io"}
  _need(p, *names.values(), *[f"h{g}" for g in _LSTM_GATES])
  w_i = jnp.concatenate([p[names[g]]["kernel"] for g in _LSTM_GATES], axis=-1)
  w_h = jnp.concatenate([p[f"h{g}"]["kernel"] for g in _LSTM_GATES], axis=-1)
  b = jnp.concatenate([p[f"h{g}"]["bias"] for g in _LSTM_GATES], axis=-1)
  return LSTMParams(w_i=w_i, w_h=w_h, b=b)


def lstm_to_nnx(params: LSTMParams, *, optimized: bool = False) -> dict:
  """``LSTMParams`` -> pure state of NNX ``LSTMCell`` (or ``OptimizedLSTMCell`` with ``optimized=True``)."""
  H = _hidden(params)
  b = _bias(params.b, 4 * H, params.w_h)
  if optimized:
    return {"dense_i": {"kernel": params.w_i}, "dense_h": {"kernel": params.w_h, "bias": b}}
  out = lstm_to_linen(params._replace(b=b))
  out["if_"] = out.pop("if")
  return out


def gru_from_nnx(state: Mapping[str, Any]) -> GRUParams:
  """NNX ``GRUCell`` -> ``GRUParams`` of ``jaxrnn.gru(H)`` with ``b_hn = 0`` (NNX has no such bias)."""
  p = _unwrap(state)
  _need(p, "dense_i", "dense_h")
  w_h = p["dense_h"]["kernel"]
  return GRUParams(w_i=p["dense_i"]["kernel"], w_h=w_h, b=p["dense_i"]["bias"],
                   b_hn=jnp.zeros((w_h.shape[0],), w_h.dtype))


def gru_to_nnx(params: GRUParams) -> dict:
  """``GRUParams`` -> pure state of NNX ``GRUCell``.

  Raises:
    ValueError: ``params.b_hn`` is nonzero (NNX's ``GRUCell`` has no recurrent candidate bias), checked when
      the value is concrete.
  """
  if params.b_hn is not None:
    try:
      nonzero = bool(np.any(np.asarray(params.b_hn) != 0))
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
      nonzero = False
    if nonzero:
      raise ValueError("NNX GRUCell has no recurrent candidate bias, but params.b_hn is nonzero; "
                       "use linen's GRUCell (gru_to_linen) or train the jaxrnn GRU with b_hn fixed at 0")
  H = _hidden(params)
  return {"dense_i": {"kernel": params.w_i, "bias": _bias(params.b, 3 * H, params.w_h)},
          "dense_h": {"kernel": params.w_h}}


def simple_from_nnx(state: Mapping[str, Any]) -> SimpleRNNParams:
  """NNX ``SimpleCell`` -> ``SimpleRNNParams``."""
  return _simple_from(state, "dense_i", "dense_h")


def simple_to_nnx(params: SimpleRNNParams) -> dict:
  """``SimpleRNNParams`` -> pure state of NNX ``SimpleCell``."""
  return _simple_to(params, "dense_i", "dense_h")


def _nnx_kind(module: Any) -> str:
  if isinstance(module, nnx.SimpleCell) and module.residual:
    raise ValueError("SimpleCell(residual=True) has no jaxrnn equivalent")
  for kind, cls in (("optimized_lstm", nnx.OptimizedLSTMCell), ("lstm", nnx.LSTMCell), ("gru", nnx.GRUCell),
                    ("simple", nnx.SimpleCell)):
    if isinstance(module, cls):
      return kind
  raise TypeError(f"expected an NNX LSTMCell, OptimizedLSTMCell, GRUCell or SimpleCell, got {type(module).__name__}")


def from_nnx(module: Any) -> Any:
  """The jaxrnn params of an NNX ``LSTMCell``, ``OptimizedLSTMCell``, ``GRUCell`` or ``SimpleCell`` module."""
  kind = _nnx_kind(module)
  state = nnx.to_pure_dict(nnx.state(module, nnx.Param))
  return {"lstm": lstm_from_nnx, "optimized_lstm": lstm_from_nnx, "gru": gru_from_nnx,
          "simple": simple_from_nnx}[kind](state)


def to_nnx(params: Any, module: Any) -> None:
  """Writes jaxrnn ``params`` into an NNX cell module in place (its sizes must match)."""
  kind = _nnx_kind(module)
  pure = {"lstm": lstm_to_nnx, "optimized_lstm": lambda p: lstm_to_nnx(p, optimized=True), "gru": gru_to_nnx,
          "simple": simple_to_nnx}[kind](params)
  state = nnx.state(module, nnx.Param)
  want = jax.tree.map(jnp.shape, nnx.to_pure_dict(state))
  got = jax.tree.map(jnp.shape, pure)
  if want != got:
    raise ValueError(f"params do not fit the module: module shapes {want}, converted shapes {got}")
  nnx.replace_by_pure_dict(state, pure)
  nnx.update(module, state)


# Carries


def carry_from_flax(carry: Any, kind: str) -> Any:
  """A Flax cell's carry -> the jaxrnn carry. ``kind``: ``"lstm"`` (Flax ``(c, h)`` -> ``LSTMCarry(h, c)``),
  ``"gru"`` (``h`` -> ``GRUCarry(h)``), ``"mgu"`` (``h`` -> ``MGUCarry(h)``) or ``"simple"``
  (``h`` -> ``SimpleRNNCarry(h)``)."""
  if kind == "lstm":
    c, h = carry
    return LSTMCarry(h=h, c=c)
  if kind == "gru":
    return GRUCarry(h=carry)
  if kind == "mgu":
    return MGUCarry(h=carry)
  if kind == "simple":
    return SimpleRNNCarry(h=carry)
  raise ValueError(f"kind must be 'lstm', 'gru', 'mgu' or 'simple', got {kind!r}")


def carry_to_flax(carry: Any) -> Any:
  """A jaxrnn carry -> the Flax cell's carry: ``LSTMCarry(h, c)`` -> ``(c, h)``; ``GRUCarry(h)``,
  ``MGUCarry(h)`` and ``SimpleRNNCarry(h)`` -> ``h``."""
  if isinstance(carry, LSTMCarry):
    return (carry.c, carry.h)
  if isinstance(carry, (GRUCarry, MGUCarry, SimpleRNNCarry)):
    return carry.h
  raise TypeError(f"carry must be an LSTMCarry, GRUCarry, MGUCarry or SimpleRNNCarry, got {type(carry).__name__}")


__all__ = [
    "lstm_from_linen", "lstm_to_linen", "gru_from_linen", "gru_to_linen", "mgu_from_linen", "mgu_to_linen",
    "simple_from_linen", "simple_to_linen",
    "lstm_from_nnx", "lstm_to_nnx", "gru_from_nnx", "gru_to_nnx", "simple_from_nnx", "simple_to_nnx",
    "from_nnx", "to_nnx", "carry_from_flax", "carry_to_flax",
]
