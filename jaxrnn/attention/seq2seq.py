"""A sequence-to-sequence encoder-decoder with attention: teacher forcing for training, greedy decoding under scan.

The encoder is any function ``(params, xs [B, T, E], lengths [B]) -> memory [B, T, D]`` packed as an
:class:`Encoder` (``rnn_encoder(cell)`` runs a jaxrnn cell with :func:`jaxrnn.unroll`; a bidirectional stack is
an :class:`Encoder` with its own ``apply``). The decoder is :func:`jaxrnn.attention_wrapper` around any cell.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Tuple, Union

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import initializers
from jaxrnn.attention import mechanisms as mech_lib
from jaxrnn.attention import wrapper as wrapper_lib
from jaxrnn.cells import _dense
from jaxrnn.types import Cell
from jaxrnn.unroll import unroll


class Encoder(NamedTuple):
  """An encoder: ``init(key, input_size) -> params``; ``apply(params, xs [B, T, E], lengths int[B]) -> [B, T, D]``.

  ``apply`` must give finite outputs at padded steps (they are masked out of the attention).
  """

  init: Callable[..., Any]
  apply: Callable[..., jax.Array]


def rnn_encoder(cell: Cell, *, reverse: bool = False) -> Encoder:
  """An :class:`Encoder` that runs ``cell`` over the source with :func:`jaxrnn.unroll` (``reverse``: backwards).

  The memory is the cell's outputs ``hs: [B, T, H]`` (zeros at padded steps).
  """
  _checks.cell("cell", cell)

  def apply(params, xs, lengths):
    carry = cell.initial_carry(params, xs.shape[:-2])
    _, hs = unroll(cell, params, carry, xs, seq_lengths=lengths, reverse=reverse)
    return hs

  return Encoder(init=cell.init, apply=apply)


class Seq2SeqParams(NamedTuple):
  """Parameters of :func:`seq2seq`."""

  source_embedding: jax.Array  # [V_src, E]
  target_embedding: jax.Array  # [V_tgt, E]
  encoder: Any  # the encoder's params
  decoder: wrapper_lib.AttentionWrapperParams  # the attention decoder's params (input size E)
  w_logits: jax.Array  # [O, V_tgt] readout of the decoder output a_t
  b_logits: jax.Array  # [V_tgt]


class Seq2Seq(NamedTuple):
  """An encoder-decoder model: pure functions over :class:`Seq2SeqParams`.

  Fields:
    init: ``init(key) -> params``.
    encode: ``encode(params, src int[B, N], src_lengths int[B]) -> memory [B, N, D]``.
    logits: ``logits(params, src, src_lengths, tgt_in int[B, M]) -> (logits [B, M, V], weights [B, M, N])``,
      teacher forcing (the decoder reads the true previous token).
    loss: ``loss(params, src, src_lengths, tgt_in, tgt_out, tgt_lengths, *, doubly_stochastic_weight=0.0) ->
      scalar``: mean cross-entropy over the valid target tokens, plus ``doubly_stochastic_weight`` times the mean
      over the batch of :func:`jaxrnn.doubly_stochastic_penalty` of the attention weights (valid target steps
      and source positions only; Xu et al. 2015, eq. 14). See :func:`sequence_loss`.
    greedy_decode: ``greedy_decode(params, src, src_lengths, max_length) -> (tokens int[B, L], weights
      [B, L, N])``: feeds back its own argmax under ``lax.scan`` for a fixed ``max_length`` steps; after ``EOS``
      the tokens are ``PAD``.
    decoder: ``decoder(memory_size) -> Cell``, the decoder cell (an :func:`jaxrnn.attention_wrapper`).
    beam_search: ``beam_search(params, src, src_lengths, max_length, beam_size, *, length_penalty=0.6) -> (tokens
      int[B, L], weights [B, L, N], scores [B])``: the best hypothesis of a batched beam search under
      ``lax.scan`` (see :func:`seq2seq`); ``beam_size=1`` is ``greedy_decode``.
  """

  init: Callable[..., Seq2SeqParams]
  encode: Callable[..., jax.Array]
  logits: Callable[..., Tuple[jax.Array, jax.Array]]
  loss: Callable[..., jax.Array]
  greedy_decode: Callable[..., Tuple[jax.Array, jax.Array]]
  decoder: Callable[[int], Cell]
  beam_search: Callable[..., Tuple[jax.Array, jax.Array, jax.Array]]


def sequence_loss(logits: jax.Array, weights: jax.Array, tgt_out: jax.Array, tgt_lengths: jax.Array,
                  src_lengths: jax.Array, *, doubly_stochastic_weight: Any = 0.0) -> jax.Array:
  r"""The loss of :attr:`Seq2Seq.loss` from teacher-forced ``logits`` and attention ``weights``.

  .. math::

     \mathcal{L} = \frac{1}{\sum_b M_b} \sum_{b, t < M_b} -\log p(y_{b,t}) \;+\;
       \lambda \frac{1}{B} \sum_b \sum_{s < N_b} \big(1 - \textstyle\sum_{t < M_b} \alpha_{b,t,s}\big)^2

  (the second term is the doubly stochastic attention penalty of Xu et al. 2015, eq. 14, with ``tau = 1``;
  ``M_b = tgt_lengths``, ``N_b = src_lengths``, ``lambda = doubly_stochastic_weight``).

  Args:
    logits: ``[B, M, V]``.
    weights: ``[B, M, N]`` attention weights per target step.
    tgt_out: ``int[B, M]`` targets.
    tgt_lengths: ``int[B]`` valid target steps.
    src_lengths: ``int[B]`` valid source positions (only read by the penalty).
    doubly_stochastic_weight: ``lambda >= 0``; ``0`` (a Python number) skips the penalty's computation.

  Returns:
    A float32 scalar.

  Example:

    >>> import jax.numpy as jnp, jaxrnn
    >>> logits = jnp.zeros((1, 2, 4))                               # uniform over 4 tokens
    >>> w = jnp.array([[[1.0, 0.0], [1.0, 0.0]]])                   # position 0 read twice, 1 never
    >>> args = (logits, w, jnp.array([[1, 2]]), jnp.array([2]), jnp.array([2]))
    >>> round(jaxrnn.attention.seq2seq.sequence_loss(*args).item(), 4)  # log 4
    1.3863
    >>> round(jaxrnn.attention.seq2seq.sequence_loss(*args, doubly_stochastic_weight=0.5).item(), 4)
    2.3863
  """
  logits = _checks.floating("logits", logits)
  if logits.ndim != 3 or tuple(tgt_out.shape) != logits.shape[:2]:
    raise ValueError(f"logits must be [B, M, V] and tgt_out [B, M], got shapes {logits.shape} and {tgt_out.shape}")
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(logp, tgt_out[..., None], axis=-1)[..., 0]  # [B, M]
  valid = jnp.arange(tgt_out.shape[1])[None, :] < tgt_lengths[:, None]
  xent = jnp.sum(jnp.where(valid, nll, 0.0)) / jnp.maximum(jnp.sum(valid), 1)
  if isinstance(doubly_stochastic_weight, (int, float)):
    if doubly_stochastic_weight < 0:
      raise ValueError(f"doubly_stochastic_weight must be >= 0, got {doubly_stochastic_weight}")
    if doubly_stochastic_weight == 0:
      return xent
  memory_mask = jnp.arange(weights.shape[-1])[None, :] < src_lengths[:, None]
  penalty = wrapper_lib.doubly_stochastic_penalty(weights.astype(jnp.float32), step_mask=valid,
                                                  memory_mask=memory_mask)  # [B]
  return xent + doubly_stochastic_weight * jnp.mean(penalty)


def seq2seq(
    encoder: Union[Encoder, Cell],
    decoder_cell: Cell,
    mechanism: mech_lib.AttentionMechanism,
    *,
    source_vocab_size: int,
    target_vocab_size: int,
    embed_size: int,
    attention_layer_size: Optional[int] = None,
    bos_id: int = 1,
    eos_id: int = 2,
    pad_id: int = 0,
    param_dtype: Any = jnp.float32,
) -> Seq2Seq:
  """An encoder-decoder with attention (Bahdanau et al. 2015; Luong et al. 2015) over token sequences.

  ``memory = encoder(embed(src))``; the decoder is ``attention_wrapper(decoder_cell, mechanism)`` reading that
  memory (masked past each source length), fed ``embed(y_{t-1})``; ``logits_t = a_t W + b``. With
  :func:`jaxrnn.last_position_attention` as the mechanism, the same model is the attention-free encoder-decoder
  of Cho et al. 2014 (the decoder sees only the encoder's final output).

  Args:
    encoder: an :class:`Encoder`, or a cell (run forwards by :func:`rnn_encoder`).
    decoder_cell: the decoder's cell.
    mechanism: the attention mechanism.
    source_vocab_size, target_vocab_size: vocabulary sizes.
    embed_size: ``E``, the size of both token embeddings.
    attention_layer_size: Luong's attentional layer size (see :func:`jaxrnn.attention_wrapper`).
    bos_id, eos_id, pad_id: special tokens of the target vocabulary.
    param_dtype: dtype of the embeddings and the readout.

  Decoding: ``greedy_decode`` feeds back its argmax; ``beam_search`` keeps the ``beam_size`` best prefixes of
  each example (all examples at once, one ``lax.scan`` of ``max_length`` steps, so it runs under ``jit``): at every
  step each live hypothesis is extended by every token, finished ones (after ``EOS``) only by ``PAD`` at no cost,
  and the ``beam_size`` highest sums of log-probabilities survive. The answer is the hypothesis with the highest
  length-normalised score ``log p(y) / ((5 + |y|) / 6) ** length_penalty`` (Wu et al. 2016, "Google's Neural
  Machine Translation System", eq. 14; ``|y|`` counts the tokens up to and including ``EOS``;
  ``length_penalty=0`` is the plain log-probability). With ``beam_size=1`` it returns ``greedy_decode``'s tokens
  and weights.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> model = jaxrnn.seq2seq(jaxrnn.gru(8), jaxrnn.gru(8), jaxrnn.luong_attention(),
    ...                        source_vocab_size=13, target_vocab_size=13, embed_size=4, attention_layer_size=8)
    >>> params = model.init(jax.random.key(0))
    >>> src, lengths = jnp.array([[3, 4, 5], [6, 7, 0]]), jnp.array([3, 2])
    >>> tokens, weights = model.greedy_decode(params, src, lengths, max_length=5)
    >>> tokens.shape, weights.shape
    ((2, 5), (2, 5, 3))
  """
  if isinstance(encoder, Cell):
    encoder = rnn_encoder(encoder)
  if not isinstance(encoder, Encoder):
    raise TypeError(f"encoder must be a jaxrnn.attention.seq2seq.Encoder or a jaxrnn.Cell, "
                    f"got {type(encoder).__name__}")
  Vs = _checks.positive_int("source_vocab_size", source_vocab_size)
  Vt = _checks.positive_int("target_vocab_size", target_vocab_size)
  E = _checks.positive_int("embed_size", embed_size)
  param_dtype = _checks.dtype("param_dtype", param_dtype)
  embed_init = initializers.normal(1.0)
  kernel_init = initializers.lecun_normal()
  holder = {}

  def memory_size(enc_params):
    xs = jax.ShapeDtypeStruct((1, 2, E), param_dtype)
    out = jax.eval_shape(encoder.apply, enc_params, xs, jnp.array([2]))
    return out.shape[-1]

  def decoder_for(D):
    if D not in holder:
      holder[D] = wrapper_lib.attention_wrapper(decoder_cell, mechanism, memory_size=D,
                                                attention_layer_size=attention_layer_size,
                                                param_dtype=param_dtype)
    return holder[D]

  def init(key):
    _checks.key("key", key)
    k_se, k_te, k_enc, k_dec, k_out = jax.random.split(key, 5)
    enc_params = encoder.init(k_enc, E)
    dec = decoder_for(memory_size(enc_params))
    dec_params = dec.init(k_dec, E)
    O = dec_params.w_out.shape[1] if dec_params.w_out is not None else memory_size(enc_params)
    return Seq2SeqParams(source_embedding=embed_init(k_se, (Vs, E), param_dtype),
                         target_embedding=embed_init(k_te, (Vt, E), param_dtype),
                         encoder=enc_params, decoder=dec_params,
                         w_logits=kernel_init(k_out, (O, Vt), param_dtype), b_logits=jnp.zeros((Vt,), param_dtype))

  def check_tokens(name, tokens):
    tokens = jnp.asarray(tokens)
    if not jnp.issubdtype(tokens.dtype, jnp.integer) or tokens.ndim != 2:
      raise TypeError(f"{name} must be an integer array [B, N], got {tokens.dtype}{list(tokens.shape)}")
    return tokens

  def encode(params, src, src_lengths):
    src = check_tokens("src", src)
    src_lengths = jnp.asarray(src_lengths)
    if src_lengths.shape != src.shape[:1]:
      raise ValueError(f"src_lengths must have shape {src.shape[:1]} ([B]), got {src_lengths.shape}")
    xs = params.source_embedding[src]  # [B, N, E]
    return encoder.apply(params.encoder, xs, src_lengths)

  def start(params, src, src_lengths):
    memory = encode(params, src, src_lengths)
    dec = decoder_for(memory.shape[-1])
    mask = jnp.arange(src.shape[1])[None, :] < src_lengths[:, None]
    carry = dec.initial_carry(params.decoder, src.shape[:1], memory=memory, memory_mask=mask)
    return dec, carry

  def readout(params, a):
    return _dense.project(a, params.w_logits, params.b_logits, None, None)

  def logits(params, src, src_lengths, tgt_in):
    tgt_in = check_tokens("tgt_in", tgt_in)
    dec, carry = start(params, src, src_lengths)
    xs = jnp.moveaxis(params.target_embedding[tgt_in], 1, 0)  # [M, B, E]

    def body(c, x):
      c, a = dec.step(params.decoder, c, x)
      return c, (a, c.weights)

    _, (outs, weights) = jax.lax.scan(body, carry, xs)
    return jnp.moveaxis(readout(params, outs), 0, 1), jnp.moveaxis(weights, 0, 1)

  def loss(params, src, src_lengths, tgt_in, tgt_out, tgt_lengths, *, doubly_stochastic_weight=0.0):
    lg, weights = logits(params, src, src_lengths, tgt_in)
    return sequence_loss(lg, weights, tgt_out, tgt_lengths, src_lengths,
                         doubly_stochastic_weight=doubly_stochastic_weight)

  def greedy_decode(params, src, src_lengths, max_length):
    max_length = _checks.positive_int("max_length", max_length)
    dec, carry = start(params, src, src_lengths)
    B = src.shape[0]

    def body(state, _):
      c, prev, done = state
      c, a = dec.step(params.decoder, c, params.target_embedding[prev])
      tok = jnp.argmax(readout(params, a), axis=-1).astype(jnp.int32)
      tok = jnp.where(done, pad_id, tok)
      return (c, tok, done | (tok == eos_id)), (tok, c.weights)

    init_state = (carry, jnp.full((B,), bos_id, jnp.int32), jnp.zeros((B,), bool))
    _, (tokens, weights) = jax.lax.scan(body, init_state, None, length=max_length)
    return jnp.moveaxis(tokens, 0, 1), jnp.moveaxis(weights, 0, 1)

  def beam_search(params, src, src_lengths, max_length, beam_size, *, length_penalty=0.6):
    max_length = _checks.positive_int("max_length", max_length)
    K = _checks.positive_int("beam_size", beam_size)
    alpha = _checks.finite_number("length_penalty", length_penalty)
    dec, carry = start(params, src, src_lengths)
    B, N = src.shape
    carry = jax.tree.map(lambda a: jnp.repeat(a, K, axis=0), carry)  # [B * K, ...]: beam k of example b at b K + k
    neg = jnp.asarray(-jnp.inf, jnp.float32)
    pad_only = jnp.where(jnp.arange(Vt) == pad_id, 0.0, neg)  # a finished hypothesis continues with PAD, unchanged

    def gather(a, origin):  # a: [B, K, ...], origin: [B, K] -> a[b, origin[b, k]]
      idx = origin.reshape(origin.shape + (1,) * (a.ndim - 2))
      return jnp.take_along_axis(a, idx, axis=1)

    def body(state, t):
      c, prev, score, done, length, toks, ws = state
      c, a = dec.step(params.decoder, c, params.target_embedding[prev.reshape(B * K)])
      logp = jax.nn.log_softmax(readout(params, a).astype(jnp.float32), axis=-1).reshape(B, K, Vt)
      logp = jnp.where(done[..., None], pad_only, logp)
      cand = (score[..., None] + logp).reshape(B, K * Vt)
      score, flat = jax.lax.top_k(cand, K)  # [B, K]
      origin, tok = flat // Vt, (flat % Vt).astype(jnp.int32)
      regroup = lambda x: gather(x.reshape((B, K) + x.shape[1:]), origin).reshape(x.shape)
      c = jax.tree.map(regroup, c)
      was_done = gather(done, origin)
      toks = gather(toks, origin).at[:, :, t].set(tok)
      ws = gather(ws, origin).at[:, :, t].set(c.weights.reshape(B, K, N))
      return (c, tok, score, was_done | (tok == eos_id), gather(length, origin) + (~was_done).astype(jnp.int32),
              toks, ws), None

    score0 = jnp.broadcast_to(jnp.where(jnp.arange(K) == 0, 0.0, neg)[None, :], (B, K))  # one hypothesis at t = 0
    init_state = (carry, jnp.full((B, K), bos_id, jnp.int32), score0, jnp.zeros((B, K), bool),
                  jnp.zeros((B, K), jnp.int32), jnp.full((B, K, max_length), pad_id, jnp.int32),
                  jnp.zeros((B, K, max_length, N), carry.weights.dtype))
    (_, _, score, _, length, toks, ws), _ = jax.lax.scan(body, init_state, jnp.arange(max_length))
    normalised = score / ((5.0 + length) / 6.0) ** alpha  # Wu et al. 2016, eq. 14
    best = jnp.argmax(normalised, axis=1)[:, None]
    pick = lambda a: gather(a, best)[:, 0]
    return pick(toks), pick(ws), pick(normalised)

  # Jitted, so that calls outside jit (a notebook) compile once per shape: each builds its loop's body afresh, and
  # lax.scan compiled it again on every eager call (greedy_decode 330 ms, beam_search 750-900 ms a call for a small
  # GRU model). `loss` calls the jitted `logits`; its own arithmetic stays eager, so that a weight of 0 (a Python
  # number) still skips the penalty and a traced one is taken.
  logits = jax.jit(logits)
  greedy_decode = jax.jit(greedy_decode, static_argnames=("max_length",))
  beam_search = jax.jit(beam_search, static_argnames=("max_length", "beam_size", "length_penalty"))
  return Seq2Seq(init=init, encode=encode, logits=logits, loss=loss, greedy_decode=greedy_decode,
                 decoder=decoder_for, beam_search=beam_search)
