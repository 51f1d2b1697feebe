"""A sequence model around any cell: embedding (or raw inputs) -> recurrent layers -> linear readout.

Cells are built by name from :data:`CELLS`, one small dict mapping a name to a factory
``factory(hidden_size, *, dtype=..., **cell_options) -> jaxrnn.Cell``; a new cell is one more entry (and its
name in ``jaxrnn.train.config.CELL_NAMES``).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

import jaxrnn
from jaxrnn import initializers

# name -> factory(hidden_size, *, dtype, param_dtype, **options) -> Cell. Extend here to train a new cell.
CELLS = {
    "simple_rnn": jaxrnn.simple_rnn,
    "lstm": jaxrnn.lstm,
    "gru": jaxrnn.gru,
    "irnn": jaxrnn.irnn,
}


class ModelParams(NamedTuple):
  """Parameters of :class:`Model`."""

  embed: Optional[jax.Array]  # [V, E] token embedding; None for real-valued inputs
  layers: Tuple[Tuple[Any, ...], ...]  # per layer: (forward params,) or (forward, backward) cell params
  w_out: jax.Array  # [D, O] readout, D = H (or 2H bidirectional)
  b_out: jax.Array  # [O]


class Model(NamedTuple):
  """A recurrent sequence model: pure ``init``, ``apply`` and (for token tasks) ``sample`` functions.

  Fields:
    init: ``init(key) -> ModelParams``.
    apply: ``apply(params, inputs, key=None) -> outputs``; ``inputs`` are ``int32[B, T]`` tokens or
      ``[B, T, F]`` reals; ``outputs`` are ``[B, T, O]`` (readout ``"all"``) or ``[B, O]`` (``"last"``).
      ``key`` turns dropout on (training); ``None`` is evaluation.
    sample: ``sample(params, prompt int32[P], length, key, temperature=1.0, top_k=0) -> int32[length]``:
      autoregressive sampling after a non-empty prompt (token-in, token-out tasks only).
    cell: the cell of every layer.
  """

  init: Callable
  apply: Callable
  sample: Callable
  cell: jaxrnn.Cell


def make_cell(name: str, hidden_size: int, *, dtype: Any = None, options: Optional[dict] = None) -> jaxrnn.Cell:
  """Builds the cell ``name`` from :data:`CELLS`; bad names or options raise ``ValueError`` naming the choices."""
  if name not in CELLS:
    raise ValueError(f"model.cell = {name!r} is not a known cell; choices: {', '.join(CELLS)}")
  try:
    return CELLS[name](hidden_size, dtype=dtype, **(options or {}))
  except TypeError as e:
    raise ValueError(f"model.cell_options {options!r} do not fit cell {name!r}: {e}") from None


def _dropout(key, x, rate):
  if key is None or rate == 0.0:
    return x
  keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


def make_model(cfg, task) -> Model:
  """The model for a :class:`jaxrnn.train.config.ModelConfig` and a :class:`jaxrnn.train.tasks.Task`."""
  dtype = {"float32": None, "bfloat16": jnp.bfloat16}[cfg.dtype]
  cell = make_cell(cfg.cell, cfg.hidden_size, dtype=dtype, options=cfg.cell_options)
  n_dir = 2 if cfg.bidirectional else 1
  width = n_dir * cfg.hidden_size
  tokens = task.input_vocab is not None
  in_size = cfg.embed_size if tokens else task.input_size
  last = task.readout == "last"

  def init(key):
    k_embed, k_out, k_layers = jax.random.split(key, 3)
    embed = (jax.random.normal(k_embed, (task.input_vocab, cfg.embed_size), jnp.float32) if tokens else None)
    layers = []
    for i in range(cfg.layers):
      keys = jax.random.split(jax.random.fold_in(k_layers, i), n_dir)
      layers.append(tuple(cell.init(k, in_size if i == 0 else width) for k in keys))
    w_out = initializers.lecun_normal()(k_out, (width, task.output_size), jnp.float32)
    return ModelParams(embed, tuple(layers), w_out, jnp.zeros((task.output_size,), jnp.float32))

  def _embed(params, inputs):
    return params.embed[inputs] if tokens else inputs.astype(jnp.float32)

  def _readout(params, h):
    out = h.astype(jnp.float32) @ params.w_out
    return out + params.b_out.reshape((1,) * (out.ndim - 1) + (-1,))

  def apply(params, inputs, key=None):
    x = _embed(params, inputs)  # [B, T, E]
    batch = x.shape[:1]
    keys = [None] * (cfg.layers + 1) if key is None else list(jax.random.split(key, cfg.layers + 1))
    finals = None
    for layer, k in zip(params.layers, keys):
      x = _dropout(k, x, cfg.dropout)
      outs, finals = [], []
      for d, p in enumerate(layer):
        _, hs = jaxrnn.unroll(cell, p, cell.initial_carry(p, batch), x, reverse=(d == 1))
        outs.append(hs)
        finals.append(hs[:, 0] if d == 1 else hs[:, -1])  # each direction's output after the whole sequence
      x = jnp.concatenate(outs, axis=-1) if n_dir == 2 else outs[0]
    h = jnp.concatenate(finals, axis=-1) if last else x
    return _readout(params, _dropout(keys[-1], h, cfg.dropout))

  def sample(params, prompt, length, key, temperature=1.0, top_k=0):
    if not tokens or last:
      raise ValueError(f"sampling needs a token-in, token-out task; task {task.name!r} is not one")
    prompt = jnp.asarray(prompt, jnp.int32)
    if prompt.ndim != 1 or prompt.shape[0] < 1:
      raise ValueError(f"prompt must be a non-empty int[P], got shape {prompt.shape}")
    x = _embed(params, prompt)  # [P, E]
    carries = []
    for (p,) in params.layers:
      c, x = jaxrnn.unroll(cell, p, cell.initial_carry(p, ()), x)
      carries.append(c)
    logits = _readout(params, x[-1])

    def pick(logits, k):
      if temperature <= 0:
        return jnp.argmax(logits).astype(jnp.int32)
      logits = logits / temperature
      if top_k and top_k > 0:
        kth = jax.lax.top_k(logits, min(int(top_k), logits.shape[-1]))[0][-1]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
      return jax.random.categorical(k, logits).astype(jnp.int32)

    def body(state, k):
      carries, logits = state
      tok = pick(logits, k)
      h = params.embed[tok]
      new = []
      for (p,), c in zip(params.layers, carries):
        c, h = cell.step(p, c, h)
        new.append(c)
      return (tuple(new), _readout(params, h)), tok

    _, toks = jax.lax.scan(body, (tuple(carries), logits), jax.random.split(key, length))
    return toks

  return Model(init=init, apply=apply, sample=sample, cell=cell)


def count_params(params) -> int:
  """Number of scalars in a params pytree."""
  return sum(int(x.size) for x in jax.tree_util.tree_leaves(params))
