"""Models around any cell, composed with the library's combinators.

Two kinds, chosen by the task:

* :func:`make_model` (``adding``, ``copy``, ``charlm``): embedding (or the raw inputs) -> ``jaxrnn.stack`` of
  ``model.layers`` layers (each ``jaxrnn.bidirectional(cell, cell)`` if ``model.bidirectional``, wrapped in
  ``jaxrnn.dropout`` if ``model.dropout``) -> a linear readout.
* :func:`make_seq2seq_model` (``reverse``, ``sort``): ``jaxrnn.seq2seq`` with an encoder and an attention
  decoder of the same cell (``model.attention`` names the mechanism from :data:`ATTENTION`).

Cells are built by name from :data:`CELLS`, one small dict mapping a name to a factory
``factory(hidden_size, *, dtype=..., **cell_options) -> jaxrnn.Cell``; a new cell is one more entry (its name then
becomes a valid ``model.cell``).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

import jaxrnn
from jaxrnn import initializers
from jaxrnn.attention import seq2seq as s2s
from jaxrnn.attention import tasks as digit_tasks


def _greff(variant: str) -> Callable[..., jaxrnn.Cell]:
  def factory(hidden_size, **kwargs):
    return jaxrnn.peephole_lstm(hidden_size, variant=variant, **kwargs)
  return factory


def _lstmp(hidden_size, *, proj_size=None, **kwargs):
  return jaxrnn.lstmp(hidden_size, proj_size or max(1, hidden_size // 2), **kwargs)


def _clockwork(hidden_size, *, periods=None, num_modules=None, **kwargs):
  if periods is None and num_modules is None:  # as many modules (<= 4) as divide hidden_size
    num_modules = next(g for g in (4, 3, 2, 1) if hidden_size % g == 0)
  return jaxrnn.clockwork_rnn(hidden_size, periods=periods, num_modules=num_modules, **kwargs)


def _depth_gated(hidden_size, *, depth=2, **kwargs):
  return jaxrnn.depth_gated_lstm((hidden_size,) * depth, **kwargs)


# name -> factory(hidden_size, *, dtype, param_dtype, **options) -> Cell. Extend here to train a new cell.
# Every sequential vector cell of the library (conv_lstm and grid_lstm need image or grid inputs: not here).
CELLS = {
    "simple_rnn": jaxrnn.simple_rnn,
    "lstm": jaxrnn.lstm,
    "gru": jaxrnn.gru,
    "irnn": jaxrnn.irnn,
    # LSTM family: peepholes (Gers & Schmidhuber 2000), the variants of Greff et al. 2015, coupled gates,
    # layer norm (Ba et al. 2016), projection (Sak et al. 2014; proj_size defaults to hidden_size // 2).
    "peephole_lstm": jaxrnn.peephole_lstm,
    **{f"lstm_{v.lower()}": _greff(v) for v in jaxrnn.LSTM_VARIANTS if v != "vanilla"},
    "coupled_lstm": jaxrnn.coupled_lstm,
    "layer_norm_lstm": jaxrnn.layer_norm_lstm,
    "lstmp": _lstmp,
    "depth_gated_lstm": _depth_gated,  # depth layers (default 2) of hidden_size in one cell
    # Other gated and ungated cells.
    "mgu": jaxrnn.mgu,
    "indrnn": jaxrnn.indrnn,
    "clockwork_rnn": _clockwork,  # num_modules defaults to the largest of 4, 3, 2, 1 dividing hidden_size
    # Parallel-in-time cells (run with their whole-sequence paths by jaxrnn.unroll).
    "min_gru": jaxrnn.min_gru,
    "min_lstm": jaxrnn.min_lstm,
    "lru": jaxrnn.lru,
    "rg_lru": jaxrnn.rg_lru,
    "mlstm": jaxrnn.mlstm,
    "slstm": jaxrnn.slstm,
}

# model.attention of the seq2seq tasks: name -> factory(size) -> AttentionMechanism (size = model.attention_size).
ATTENTION = {
    "additive": jaxrnn.additive_attention,  # Bahdanau et al. 2015
    "location": lambda size: jaxrnn.additive_attention(size, location_kernel_size=5),  # Chorowski et al. 2015
    "luong": lambda size: jaxrnn.luong_attention(),  # Luong et al. 2015, "general"
    "scaled_luong": lambda size: jaxrnn.luong_attention(scale=True),
    "dot": lambda size: jaxrnn.dot_attention(),
    "none": lambda size: jaxrnn.last_position_attention(),  # the decoder sees the encoder's final output only
}


class ModelParams(NamedTuple):
  """Parameters of :func:`make_model`'s model."""

  embed: Optional[jax.Array]  # [V, E] token embedding; None for real-valued inputs
  layers: Any  # the jaxrnn.stack's params: one entry per layer (cell params, or BidirectionalParams(fwd, bwd))
  w_out: jax.Array  # [D, O] readout, D = H (or 2H bidirectional)
  b_out: jax.Array  # [O]


class Model(NamedTuple):
  """A model: pure ``init``, ``apply``, ``loss`` and (where it makes sense) ``sample`` and ``metrics`` functions.

  Fields:
    init: ``init(key) -> params``.
    apply: ``apply(params, inputs, key=None) -> outputs``; for :func:`make_model`, ``inputs`` are ``int32[B, T]``
      tokens or ``[B, T, F]`` reals and ``outputs`` are ``[B, T, O]`` (readout ``"all"``) or ``[B, O]``
      (``"last"``). ``key`` turns dropout on (training); ``None`` is evaluation.
    sample: ``sample(params, prompt int32[P], length, key, temperature=1.0, top_k=0) -> int32[length]``:
      autoregressive sampling after a non-empty prompt (token-in, token-out tasks only).
    cell: the cell of every layer (the encoder's and the decoder's cell for seq2seq).
    loss: ``loss(params, inputs, targets, key=None) -> scalar``, the training objective (the task's loss of
      ``apply``, plus the model's regularisers).
    metrics: ``None`` or ``metrics(params, inputs, targets) -> {name: scalar}``, jittable, evaluated on the
      held-out batches next to the loss (seq2seq: ``exact_acc`` and ``token_acc`` of greedy decoding).
  """

  init: Callable
  apply: Callable
  sample: Callable
  cell: jaxrnn.Cell
  loss: Optional[Callable] = None
  metrics: Optional[Callable] = None


def make_cell(name: str, hidden_size: int, *, dtype: Any = None, options: Optional[dict] = None) -> jaxrnn.Cell:
  """Builds the cell ``name`` from :data:`CELLS`; bad names or options raise ``ValueError`` naming the choices."""
  if name not in CELLS:
    raise ValueError(f"model.cell = {name!r} is not a known cell; choices: {', '.join(CELLS)}")
  try:
    return CELLS[name](hidden_size, dtype=dtype, **(options or {}))
  except TypeError as e:
    raise ValueError(f"model.cell_options {options!r} do not fit cell {name!r}: {e}") from None


def _dtype(cfg):
  return {"float32": None, "bfloat16": jnp.bfloat16}[cfg.dtype]


def network(cfg, cell: jaxrnn.Cell) -> jaxrnn.Cell:
  """The recurrent layers of :func:`make_model` as one cell: ``stack(dropout(bidirectional(cell, cell)), ...)``.

  Dropout (``cfg.dropout``, fresh masks every step) is on each layer's input and on the last layer's output (the
  readout's input), not on the recurrent connections (Zaremba et al. 2014).
  """
  layers = []
  for i in range(cfg.layers):
    layer = jaxrnn.bidirectional(cell, cell) if cfg.bidirectional else cell
    if cfg.dropout > 0:
      layer = jaxrnn.dropout(layer, input_rate=cfg.dropout,
                             output_rate=cfg.dropout if i == cfg.layers - 1 else 0.0)
    layers.append(layer)
  return jaxrnn.stack(*layers)


def make_model(cfg, task) -> Model:
  """The model for a :class:`jaxrnn.train.config.ModelConfig` and a :class:`jaxrnn.train.tasks.Task`."""
  if task.readout == "seq2seq":
    return make_seq2seq_model(cfg, task)
  cell = make_cell(cfg.cell, cfg.hidden_size, dtype=_dtype(cfg), options=cfg.cell_options)
  net = network(cfg, cell)
  tokens = task.input_vocab is not None
  in_size = cfg.embed_size if tokens else task.input_size
  last = task.readout == "last"

  def init(key):
    k_embed, k_out, k_layers = jax.random.split(key, 3)
    embed = (jax.random.normal(k_embed, (task.input_vocab, cfg.embed_size), jnp.float32) if tokens else None)
    layers = net.init(k_layers, in_size)
    width = jax.eval_shape(lambda p: jaxrnn.unroll(net, p, net.initial_carry(p, (1,)),
                                                   jnp.zeros((1, 1, in_size)))[1], layers).shape[-1]
    w_out = initializers.lecun_normal()(k_out, (width, task.output_size), jnp.float32)
    return ModelParams(embed, layers, w_out, jnp.zeros((task.output_size,), jnp.float32))

  def _embed(params, inputs):
    return params.embed[inputs] if tokens else inputs.astype(jnp.float32)

  def _readout(params, h):
    out = h.astype(jnp.float32) @ params.w_out
    return out + params.b_out.reshape((1,) * (out.ndim - 1) + (-1,))

  def apply(params, inputs, key=None):
    x = _embed(params, inputs)  # [B, T, E]
    carry = net.initial_carry(params.layers, x.shape[:1], key=key)
    _, hs = jaxrnn.unroll(net, params.layers, carry, x)  # [B, T, D]
    if last:  # each direction's output after reading the whole sequence
      half = hs.shape[-1] // 2
      h = (jnp.concatenate([hs[:, -1, :half], hs[:, 0, half:]], axis=-1) if cfg.bidirectional else hs[:, -1])
    else:
      h = hs
    return _readout(params, h)

  def loss(params, inputs, targets, key=None):
    return task.loss(apply(params, inputs, key), targets)

  def sample(params, prompt, length, key, temperature=1.0, top_k=0):
    if not tokens or last:
      raise ValueError(f"sampling needs a token-in, token-out task; task {task.name!r} is not one")
    prompt = jnp.asarray(prompt, jnp.int32)
    if prompt.ndim != 1 or prompt.shape[0] < 1:
      raise ValueError(f"prompt must be a non-empty int[P], got shape {prompt.shape}")
    x = _embed(params, prompt)[None]  # [1, P, E]
    carry, hs = jaxrnn.unroll(net, params.layers, net.initial_carry(params.layers, (1,)), x)
    logits = _readout(params, hs[0, -1])

    # `temperature` may be traced (one compiled sampler for every temperature); `top_k` sets a shape: static.
    greedy = jnp.asarray(temperature) <= 0
    safe_t = jnp.where(greedy, 1.0, temperature)

    def pick(logits, k):
      best = jnp.argmax(logits).astype(jnp.int32)
      logits = logits / safe_t
      if top_k and top_k > 0:
        kth = jax.lax.top_k(logits, min(int(top_k), logits.shape[-1]))[0][-1]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
      return jnp.where(greedy, best, jax.random.categorical(k, logits).astype(jnp.int32))

    def body(state, k):
      carry, logits = state
      tok = pick(logits, k)
      carry, h = net.step(params.layers, carry, params.embed[tok][None])
      return (carry, _readout(params, h[0])), tok

    _, toks = jax.lax.scan(body, (carry, logits), jax.random.split(key, length))
    return toks

  return Model(init=init, apply=apply, sample=sample, cell=cell, loss=loss)


def make_seq2seq_model(cfg, task) -> Model:
  """An attention encoder-decoder (:func:`jaxrnn.seq2seq`) for the seq2seq tasks (``reverse``, ``sort``).

  Encoder: ``model.layers`` layers of ``model.cell`` (``jaxrnn.stack``; each ``jaxrnn.bidirectional`` if
  ``model.bidirectional``). Decoder: ``model.layers`` layers of the same cell inside ``jaxrnn.attention_wrapper``
  with the mechanism ``ATTENTION[model.attention](A)``, Luong's attentional layer of size ``A``
  (``A = model.attention_size or model.hidden_size``), token embeddings of ``model.embed_size``. The loss is
  :func:`jaxrnn.attention.seq2seq.sequence_loss` with ``model.attention_penalty`` as the weight of the doubly
  stochastic penalty.

  ``inputs`` are ``(src int[B, N], src_lengths int[B], tgt_in int[B, N+1])`` and ``targets`` are ``(tgt_out
  int[B, N+1], tgt_lengths int[B])`` (see :mod:`jaxrnn.train.tasks.digits`); ``apply`` returns ``(logits
  [B, N+1, V], weights [B, N+1, N])`` under teacher forcing.
  """
  if cfg.attention not in ATTENTION:
    raise ValueError(f"model.attention = {cfg.attention!r} is not valid; choices: {', '.join(ATTENTION)}")
  cell = make_cell(cfg.cell, cfg.hidden_size, dtype=_dtype(cfg), options=cfg.cell_options)
  size = cfg.attention_size or cfg.hidden_size
  enc_layers = [jaxrnn.bidirectional(cell, cell) if cfg.bidirectional else cell for _ in range(cfg.layers)]
  encoder = enc_layers[0] if cfg.layers == 1 else jaxrnn.stack(*enc_layers)
  decoder = cell if cfg.layers == 1 else jaxrnn.stack(*([cell] * cfg.layers))
  net = s2s.seq2seq(encoder, decoder, ATTENTION[cfg.attention](size), source_vocab_size=task.input_vocab,
                    target_vocab_size=task.output_size, embed_size=cfg.embed_size, attention_layer_size=size,
                    bos_id=digit_tasks.BOS, eos_id=digit_tasks.EOS, pad_id=digit_tasks.PAD)
  weight = float(cfg.attention_penalty)

  def apply(params, inputs, key=None):
    del key  # no dropout
    src, src_lengths, tgt_in = inputs
    return net.logits(params, src, src_lengths, tgt_in)

  def loss(params, inputs, targets, key=None):
    del key
    (src, src_lengths, tgt_in), (tgt_out, tgt_lengths) = inputs, targets
    return net.loss(params, src, src_lengths, tgt_in, tgt_out, tgt_lengths, doubly_stochastic_weight=weight)

  def metrics(params, inputs, targets):
    (src, src_lengths, _), (tgt_out, tgt_lengths) = inputs, targets
    tokens, _ = net.greedy_decode(params, src, src_lengths, tgt_out.shape[1])
    return {"exact_acc": digit_tasks.sequence_accuracy(tokens, tgt_out, tgt_lengths),
            "token_acc": digit_tasks.token_accuracy(tokens, tgt_out, tgt_lengths)}

  def sample(*args, **kwargs):
    del args, kwargs
    raise ValueError(f"sampling needs a token-in, token-out task; task {task.name!r} is not one (use greedy "
                     "decoding: jaxrnn eval reports its accuracy)")

  return Model(init=net.init, apply=apply, sample=sample, cell=cell, loss=loss, metrics=metrics)


def count_params(params) -> int:
  """Number of scalars in a params pytree."""
  return sum(int(x.size) for x in jax.tree_util.tree_leaves(params))
