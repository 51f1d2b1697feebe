"""Models around any cell, composed with the library's combinators.

Two kinds, chosen by the task's readout:

* :func:`make_model` (readouts ``"last"`` and ``"all"``): embedding (or the raw inputs) -> ``jaxrnn.stack`` of
  ``model.layers`` layers (each ``jaxrnn.bidirectional(cell, cell)`` if ``model.bidirectional``, wrapped in
  ``jaxrnn.dropout`` if ``model.dropout``) -> a linear readout; right-padded inputs of several lengths run with
  ``jaxrnn.unroll(..., seq_lengths=...)``.
* :func:`make_seq2seq_model` (readout ``"seq2seq"``: ``reverse``, ``sort``): ``jaxrnn.seq2seq`` with an encoder and
  an attention decoder of the same cell (``model.attention`` names the mechanism from
  :data:`jaxrnn.train.cells.ATTENTION`).

Cells are built by name from :data:`jaxrnn.train.cells.CELLS` (:func:`jaxrnn.train.cells.make_cell`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

import jaxrnn
from jaxrnn import initializers
from jaxrnn.attention import seq2seq as s2s
from jaxrnn.train.cells import ATTENTION, CELLS, make_cell  # noqa: F401 (CELLS is re-exported)
from jaxrnn.train.tasks import digits

if TYPE_CHECKING:  # annotations only (config and the tasks import this module's users)
  from jaxrnn.train.config import ModelConfig
  from jaxrnn.train.tasks.base import Task


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
      tokens or ``[B, T, F]`` reals (or ``([B, T, F], seq_lengths int[B])`` for a task with ``lengths``: each
      sequence's output is read after its own last step) and ``outputs`` are ``[B, T, O]`` (readout ``"all"``) or
      ``[B, O]`` (``"last"``). ``key`` turns dropout on (training); ``None`` is evaluation.
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
  loss: Callable
  metrics: Optional[Callable] = None


def _dtype(cfg):
  return {"float32": None, "bfloat16": jnp.bfloat16}[cfg.dtype]


def network(cfg: ModelConfig, cell: jaxrnn.Cell) -> jaxrnn.Cell:
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


def make_model(cfg: ModelConfig, task: Task) -> Model:
  """The model for a :class:`jaxrnn.train.config.ModelConfig` and a :class:`jaxrnn.train.tasks.Task`."""
  if task.lengths and task.readout != "last":
    raise ValueError(f"task {task.name!r}: inputs of several lengths need the 'last' readout, not {task.readout!r}")
  if task.readout == "seq2seq":
    return make_seq2seq_model(cfg, task)
  cell = make_cell(cfg.cell, cfg.hidden_size, dtype=_dtype(cfg), options=cfg.cell_options)
  net = network(cfg, cell)
  vocab = task.input_vocab
  tokens = vocab is not None
  in_size = cfg.embed_size if tokens else task.input_size
  last = task.readout == "last"

  def init(key):
    k_embed, k_out, k_layers = jax.random.split(key, 3)
    embed = None if vocab is None else jax.random.normal(k_embed, (vocab, cfg.embed_size), jnp.float32)
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
    inputs, lengths = inputs if task.lengths else (inputs, None)  # lengths: int[B] of right-padded sequences
    x = _embed(params, inputs)  # [B, T, E]
    carry = net.initial_carry(params.layers, x.shape[:1], key=key)
    _, hs = jaxrnn.unroll(net, params.layers, carry, x, seq_lengths=lengths)  # [B, T, D]
    if last:  # each direction's output after reading the whole sequence (the forward one at step length - 1)
      end = hs[:, -1] if lengths is None else jnp.take_along_axis(hs, (lengths - 1)[:, None, None], axis=1)[:, 0]
      half = hs.shape[-1] // 2
      h = jnp.concatenate([end[:, :half], hs[:, 0, half:]], axis=-1) if cfg.bidirectional else end
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


def make_seq2seq_model(cfg: ModelConfig, task: Task) -> Model:
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
  if task.input_vocab is None:
    raise ValueError(f"the seq2seq model reads tokens; task {task.name!r} has real-valued inputs (no input_vocab)")
  cell = make_cell(cfg.cell, cfg.hidden_size, dtype=_dtype(cfg), options=cfg.cell_options)
  size = cfg.attention_size or cfg.hidden_size
  enc_layers = [jaxrnn.bidirectional(cell, cell) if cfg.bidirectional else cell for _ in range(cfg.layers)]
  encoder = enc_layers[0] if cfg.layers == 1 else jaxrnn.stack(*enc_layers)
  decoder = cell if cfg.layers == 1 else jaxrnn.stack(*([cell] * cfg.layers))
  net = s2s.seq2seq(encoder, decoder, ATTENTION[cfg.attention](size), source_vocab_size=task.input_vocab,
                    target_vocab_size=task.output_size, embed_size=cfg.embed_size, attention_layer_size=size,
                    bos_id=digits.BOS, eos_id=digits.EOS, pad_id=digits.PAD)
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
    return {"exact_acc": digits.sequence_accuracy(tokens, tgt_out, tgt_lengths),
            "token_acc": digits.token_accuracy(tokens, tgt_out, tgt_lengths)}

  def sample(*args, **kwargs):
    del args, kwargs
    raise ValueError(f"sampling needs a token-in, token-out task; task {task.name!r} is not one (use greedy "
                     "decoding: jaxrnn eval reports its accuracy)")

  return Model(init=net.init, apply=apply, sample=sample, cell=cell, loss=loss, metrics=metrics)


def count_params(params: Any) -> int:
  """Number of scalars in a params pytree."""
  return sum(int(x.size) for x in jax.tree_util.tree_leaves(params))
