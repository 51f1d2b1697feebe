r"""Keras 3 interop: exact weights to and from ``keras.layers.LSTM``, ``GRU``, ``SimpleRNN``, ``Bidirectional`` and
stacks of them, and Keras masks as ``seq_lengths``.

Keras is an optional dependency (``pip install 'jaxrnn[keras]'``); ``import jaxrnn`` never imports it. The
conversions read and write the layers' weights (``layer.get_weights()`` / ``set_weights``), so they work on any
Keras backend; the parity tests run Keras on its JAX backend (``KERAS_BACKEND=jax``). Keras's default backend is
TensorFlow: when Keras is not imported yet, ``KERAS_BACKEND`` is unset and TensorFlow is not installed, importing
this module sets ``KERAS_BACKEND=jax`` first (Keras would otherwise fail to import).

Layout (Keras 3). Kernels are ``[in, out]`` in both libraries (never transposed).

* ``LSTM``: ``kernel [F, 4H]``, ``recurrent_kernel [H, 4H]``, ``bias [4H]``, gates ``i, f, c, o``: jaxrnn's
  ``lstm`` order, copied as they are.
* ``GRU``: gates ``z, r, h`` (update, reset, candidate), permuted to jaxrnn's ``r, z, n``; Keras's ``z`` keeps
  ``h`` (``h' = z h + (1 - z) n``), as jaxrnn's. ``reset_after=True`` (Keras's default): ``bias [2, 3H]``, input
  and recurrent rows: ``b = b_in + [b_rec_r, b_rec_z, 0]`` and ``b_hn = b_rec_h`` of ``jaxrnn.gru(H)``;
  ``reset_after=False``: ``bias [3H]`` -> ``b``, ``b_hn = 0`` of ``jaxrnn.gru(H, reset_after=False)``.
* ``SimpleRNN``: ``kernel``, ``recurrent_kernel``, ``bias`` -> ``jaxrnn.simple_rnn``.
* ``Bidirectional(layer, merge_mode)``: ``jaxrnn.bidirectional(fwd, bwd, merge=...)`` (``"concat"``, ``"sum"``,
  ``"mul"``, ``"ave"`` -> ``"mean"``); a list of layers (or a ``keras.Sequential`` of them): ``jaxrnn.stack``.
* Activations: ``tanh``, ``sigmoid``, ``relu``, ``hard_sigmoid``, ``linear`` map by name; others raise.
* Dropout: Keras's ``dropout`` / ``recurrent_dropout`` (one mask per sequence) become
  ``jaxrnn.variational_dropout(cell, input_rate, state_rate)``: the same rates at training (the masks are
  jaxrnn's; Keras draws one recurrent mask per gate, jaxrnn one for ``h``); none at inference.
* Masks: a Keras mask (``Masking``, ``Embedding(mask_zero=True)``) that is a prefix of each sequence is
  ``seq_lengths`` (:func:`seq_lengths_from_mask`): the valid outputs and the final states are Keras's; padded
  outputs are zeros (Keras repeats the last output unless ``zero_output_for_mask``).
* ``go_backwards``, ``stateful``, ``return_sequences=False`` are how a layer is called, not what it computes:
  ``jaxrnn.unroll(..., reverse=True)`` and ``hs[:, -1]`` do the same (a backwards layer outside ``Bidirectional``
  is refused).

Example (Keras broadcasts ranks implicitly inside its layers, so this is not a doctest under jaxrnn's strict
``jax_numpy_rank_promotion="raise"``; ``tests/test_interop_keras.py`` runs it)::

  import os; os.environ.setdefault("KERAS_BACKEND", "jax")
  import keras, jax, jax.numpy as jnp, jaxrnn
  from jaxrnn.interop import keras as jkeras
  layer = keras.layers.GRU(4, return_sequences=True)
  x = jax.random.normal(jax.random.key(0), (2, 5, 3))
  y = layer(x)                                                      # builds it
  cell, params = jkeras.from_keras(layer)                           # jaxrnn.gru(4) and GRUParams
  assert jnp.allclose(jaxrnn.unroll(cell, params, None, x)[1], y, atol=1e-5)
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any, List, Tuple

import jax.numpy as jnp
import numpy as np

from jaxrnn import _optional
from jaxrnn.cells.gru import GRUParams, gru
from jaxrnn.cells.lstm import LSTMParams, lstm
from jaxrnn.cells.simple_rnn import SimpleRNNParams, simple_rnn
from jaxrnn.combinators.bidirectional import BidirectionalParams, bidirectional
from jaxrnn.combinators.dropout import variational_dropout
from jaxrnn.combinators.stack import stack
from jaxrnn.types import Cell

if ("keras" not in sys.modules and "KERAS_BACKEND" not in os.environ
    and importlib.util.find_spec("tensorflow") is None):
  os.environ["KERAS_BACKEND"] = "jax"  # Keras's default backend (TensorFlow) is not installed
try:
  import keras
except ImportError as e:
  raise _optional.missing("jaxrnn.interop.keras", "keras", "keras") from e

_ACTIVATIONS = {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "relu", "hard_sigmoid": "hard_sigmoid",
                "linear": "identity"}
_MERGES = {"concat": "concat", "sum": "sum", "mul": "mul", "ave": "mean"}
_KERAS_ACTIVATIONS = {v: k for k, v in _ACTIVATIONS.items()}
_KERAS_MERGES = {v: k for k, v in _MERGES.items()}


def _activation(layer: Any, key: str) -> str:
  name = layer.get_config()[key]
  if not isinstance(name, str) or name not in _ACTIVATIONS:
    raise ValueError(f"{layer.name}: {key}={name!r} has no jaxrnn equivalent (supported: {sorted(_ACTIVATIONS)})")
  return _ACTIVATIONS[name]


def _weights(layer: Any) -> List[np.ndarray]:
  if not layer.built:
    raise ValueError(f"{layer.name} is not built: call it on an input (or layer.build(shape)) first")
  return [np.asarray(w) for w in layer.get_weights()]


def _gru_blocks(a: np.ndarray) -> np.ndarray:
  """Keras's ``[z, r, h]`` gate blocks (last axis) as jaxrnn's ``[r, z, n]`` (its own inverse)."""
  z, r, h = np.split(a, 3, axis=-1)
  return np.concatenate([r, z, h], axis=-1)


def _one(layer: Any, backward: bool = False) -> Tuple[Cell, Any]:
  """A plain Keras recurrent layer (not Bidirectional) as ``(cell, params)``; ``backward``: a Bidirectional's
  backward layer, whose ``go_backwards`` jaxrnn's ``bidirectional`` does itself."""
  cfg = layer.get_config()
  if cfg.get("go_backwards") and not backward:
    raise ValueError(f"{layer.name} has go_backwards=True: convert the same layer without it and run it with "
                     "jaxrnn.unroll(..., reverse=True) (outputs in input order), or wrap it in Bidirectional")
  H, use_bias = cfg["units"], cfg["use_bias"]
  w = _weights(layer)
  dt = w[0].dtype
  act = _activation(layer, "activation")
  b = jnp.asarray(w[2]) if use_bias else None
  params: Any
  if isinstance(layer, keras.layers.LSTM):
    cell = lstm(H, activation=act, gate_activation=_activation(layer, "recurrent_activation"), use_bias=use_bias,
                param_dtype=dt)
    params = LSTMParams(w_i=jnp.asarray(w[0]), w_h=jnp.asarray(w[1]), b=b)
  elif isinstance(layer, keras.layers.GRU):
    reset_after = bool(cfg["reset_after"])
    cell = gru(H, activation=act, gate_activation=_activation(layer, "recurrent_activation"),
               reset_after=reset_after, use_bias=use_bias, param_dtype=dt)
    b_gru = b_hn = None
    if use_bias:
      if reset_after:
        b_in, b_rec = w[2]
        b_gru = _gru_blocks(b_in) + np.concatenate([_gru_blocks(b_rec)[:2 * H], np.zeros(H, dt)])
        b_hn = b_rec[2 * H:]
      else:
        b_gru, b_hn = _gru_blocks(w[2]), np.zeros(H, dt)
    params = GRUParams(w_i=jnp.asarray(_gru_blocks(w[0])), w_h=jnp.asarray(_gru_blocks(w[1])),
                       b=None if b_gru is None else jnp.asarray(b_gru),
                       b_hn=None if b_hn is None else jnp.asarray(b_hn))
  elif isinstance(layer, keras.layers.SimpleRNN):
    cell = simple_rnn(H, activation=act, use_bias=use_bias, param_dtype=dt)
    params = SimpleRNNParams(w_i=jnp.asarray(w[0]), w_h=jnp.asarray(w[1]), b=b)
  else:
    raise TypeError(f"expected a keras.layers.LSTM, GRU, SimpleRNN or Bidirectional, got {type(layer).__name__}")
  if cfg.get("dropout") or cfg.get("recurrent_dropout"):
    cell = variational_dropout(cell, input_rate=cfg.get("dropout", 0.0), state_rate=cfg.get("recurrent_dropout", 0.0))
  return cell, params


def _layer(layer: Any) -> Tuple[Cell, Any]:
  if isinstance(layer, keras.layers.Bidirectional):
    merge = layer.merge_mode
    if merge not in _MERGES:
      raise ValueError(f"{layer.name}: merge_mode={merge!r} has no jaxrnn equivalent (supported: {sorted(_MERGES)})")
    (fwd, p_f), (bwd, p_b) = _one(layer.forward_layer), _one(layer.backward_layer, backward=True)
    return bidirectional(fwd, bwd, merge=_MERGES[merge]), BidirectionalParams(fwd=p_f, bwd=p_b)
  return _one(layer)


def from_keras(layers: Any) -> Tuple[Cell, Any]:
  """``(cell, params)`` computing Keras recurrent layers exactly (built layers: called once, or ``build``-ed).

  Args:
    layers: a ``keras.layers.LSTM``, ``GRU``, ``SimpleRNN`` or ``Bidirectional`` of one of them; or a list of
      them, or a ``keras.Sequential`` holding only them (and ``Masking``/``InputLayer``), for a
      :func:`jaxrnn.stack` (each but the last must have ``return_sequences=True``).

  Returns:
    ``(cell, params)``; a stack's params are a tuple with one entry per layer.

  Raises:
    TypeError, ValueError: another layer, an activation or merge mode jaxrnn has no name for, an unbuilt layer,
      a lone ``go_backwards`` layer, an inner layer of a stack without ``return_sequences``.
  """
  if isinstance(layers, keras.Sequential):
    layers = [l for l in layers.layers if not isinstance(l, (keras.layers.Masking, keras.layers.InputLayer))]
  if isinstance(layers, (list, tuple)):
    if not layers:
      raise ValueError("from_keras needs at least one layer")
    for l in layers[:-1]:
      inner = l.forward_layer if isinstance(l, keras.layers.Bidirectional) else l
      if not inner.get_config().get("return_sequences"):
        raise ValueError(f"{l.name} feeds the next layer, so it needs return_sequences=True")
    converted = [_layer(l) for l in layers]
    return stack(*[c for c, _ in converted]), tuple(p for _, p in converted)
  return _layer(layers)


def seq_lengths_from_mask(mask: Any) -> np.ndarray:
  """``seq_lengths: int32[*B]`` of a Keras mask ``bool[*B, T]`` (``layer.compute_mask`` or ``x._keras_mask``).

  Raises:
    ValueError: the mask is not a prefix of each sequence (right padding): jaxrnn's ``seq_lengths`` cannot say
      it.
  """
  m = np.asarray(mask).astype(bool)
  lengths = m.sum(-1).astype(np.int32)
  prefix = np.arange(m.shape[-1]) < lengths[..., None]
  if not np.array_equal(m, prefix):
    raise ValueError("the mask is not a prefix of each sequence (right padding only): seq_lengths cannot express "
                     "it; pad on the right, or keep the mask in Keras")
  return lengths


def _keras_blocks(cell: Cell, p: Any) -> Tuple[Any, List[np.ndarray]]:
  """The Keras layer and weights of one plain jaxrnn cell (``lstm``, ``gru``, ``simple_rnn``)."""
  cfg = cell.config
  if cfg is None or cfg.factory not in ("lstm", "gru", "simple_rnn"):
    raise ValueError(f"to_keras maps jaxrnn.lstm, gru and simple_rnn cells (and bidirectional pairs and stacks of "
                     f"them), got {cell.name!r}")
  acts = {}
  for name, keras_name in (("activation", "activation"), ("gate_activation", "recurrent_activation")):
    value = cfg.get(name)
    if value is None:
      continue
    if value not in _KERAS_ACTIVATIONS:
      raise ValueError(f"{cell.name}: {name}={value!r} has no Keras name")
    acts[keras_name] = _KERAS_ACTIVATIONS[value]
  H = cfg.get("hidden_size")
  use_bias = p.b is not None
  dt = np.asarray(p.w_h).dtype
  w = [np.asarray(p.w_i), np.asarray(p.w_h)]
  common = dict(units=H, use_bias=use_bias, return_sequences=True, dtype=str(dt), **acts)
  if cfg.factory == "lstm":
    return keras.layers.LSTM(**common), w + ([np.asarray(p.b)] if use_bias else [])
  if cfg.factory == "simple_rnn":
    return keras.layers.SimpleRNN(**common), w + ([np.asarray(p.b)] if use_bias else [])
  reset_after = bool(cfg.get("reset_after"))
  w = [_gru_blocks(a) for a in w]
  if use_bias:
    b = _gru_blocks(np.asarray(p.b))
    b_hn = np.zeros(H, dt) if p.b_hn is None else np.asarray(p.b_hn)
    if reset_after:
      w.append(np.stack([b, np.concatenate([np.zeros(2 * H, dt), b_hn])]))
    else:
      if np.any(b_hn != 0):
        raise ValueError(f"{cell.name}: Keras's GRU(reset_after=False) has no recurrent candidate bias, but b_hn "
                         "is nonzero")
      w.append(b)
  return keras.layers.GRU(reset_after=reset_after, **common), w


def to_keras(cell: Cell, params: Any, input_size: int) -> List[Any]:
  """Built Keras layers (``return_sequences=True``) holding ``params``: one per layer of a :func:`jaxrnn.stack`.

  Args:
    cell: ``jaxrnn.lstm``, ``gru`` (``reset_after`` either way) or ``simple_rnn`` with Keras-named activations,
      a ``bidirectional`` pair of them (merge ``concat``/``sum``/``mul``/``mean``), or a ``stack`` of these
      (no skip connections; a stack's ``dropout`` has no Keras layer argument and raises).
    params: its params.
    input_size: the feature size of the first layer's input.

  Returns:
    A list of layers; ``keras.Sequential(layers)`` is the model. ``from_keras`` of them gives ``params`` back
    exactly (a GRU's summed ``r``/``z`` biases go to the input row of Keras's bias, the recurrent row is zero
    there, so Keras -> jaxrnn -> Keras keeps the outputs, not that split).
  """
  cfg = cell.config
  if cfg is not None and cfg.factory == "stack":
    if cfg.get("skip_input") or cfg.get("skip_output") or cfg.get("dropout"):
      raise ValueError(f"{cell.name}: Keras layers feed each layer the one below only, with no dropout between "
                       "them (skip_input, skip_output and dropout have no Keras equivalent)")
    cells, params_list = cfg.cells, list(params)
  else:
    cells, params_list = (cell,), [params]
  out, size = [], input_size
  for c, p in zip(cells, params_list):
    ccfg = c.config
    if ccfg is not None and ccfg.factory == "bidirectional":
      merge = ccfg.get("merge")
      if merge not in _KERAS_MERGES:
        raise ValueError(f"{c.name}: merge={merge!r} has no Keras merge_mode")
      (fwd, w_f), (bwd, w_b) = _keras_blocks(ccfg.cells[0], p.fwd), _keras_blocks(ccfg.cells[1], p.bwd)
      layer = keras.layers.Bidirectional(fwd, backward_layer=bwd.__class__.from_config(
          {**bwd.get_config(), "go_backwards": True}), merge_mode=_KERAS_MERGES[merge])
      weights = w_f + w_b
    else:
      layer, weights = _keras_blocks(c, p)
    layer.build((None, None, size))
    layer.set_weights(weights)
    out.append(layer)
    size = layer.compute_output_shape((None, None, size))[-1]
  return out


__all__ = ["from_keras", "to_keras", "seq_lengths_from_mask"]
