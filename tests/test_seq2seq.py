"""seq2seq: teacher-forced training lowers the loss; greedy decoding (on the trainer's digit-task data)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxrnn
from jaxrnn.attention import seq2seq as seq2seq_lib
from jaxrnn.train.tasks import digits
from tests.registry import counting


def model(mechanism=None, encoder=None):
  return jaxrnn.seq2seq(encoder or jaxrnn.gru(5), jaxrnn.gru(5), mechanism or jaxrnn.additive_attention(4),
                        source_vocab_size=digits.VOCAB_SIZE, target_vocab_size=digits.VOCAB_SIZE, embed_size=3,
                        attention_layer_size=5)


def batch(seed=0):
  return digits.digit_task(jax.random.key(seed), 3, max_length=5, min_length=2)


def test_teacher_forced_loss_decreases():
  m = model()
  params = m.init(jax.random.key(0))
  b = batch()
  opt = optax.adam(0.05)
  state = opt.init(params)
  args = (b.src, b.src_lengths, b.tgt_in, b.tgt_out, b.tgt_lengths)

  @jax.jit
  def step(params, state):
    loss, g = jax.value_and_grad(m.loss)(params, *args)
    updates, state = opt.update(g, state)
    return optax.apply_updates(params, updates), state, loss

  losses = []
  for _ in range(8):
    params, state, loss = step(params, state)
    losses.append(float(loss))
  assert losses[-1] < 0.8 * losses[0], losses


def test_greedy_decode_shapes_determinism_and_teacher_forcing_agreement():
  m = model()
  params = m.init(jax.random.key(1))
  b = batch()
  decode = jax.jit(m.greedy_decode, static_argnums=3)
  tokens, weights = decode(params, b.src, b.src_lengths, 6)
  tokens2, _ = decode(params, b.src, b.src_lengths, 6)
  assert tokens.shape == (3, 6) and tokens.dtype == jnp.int32 and weights.shape == (3, 6, 5)
  np.testing.assert_array_equal(np.asarray(tokens), np.asarray(tokens2))
  valid = np.arange(5)[None, :] < np.asarray(b.src_lengths)[:, None]
  assert np.all(np.asarray(weights)[np.broadcast_to(~valid[:, None], weights.shape)] == 0)
  # Feeding the greedy tokens back under teacher forcing gives the same argmaxes (before any EOS).
  tgt_in = jnp.concatenate([jnp.full((3, 1), digits.BOS, jnp.int32), tokens[:, :-1]], axis=1)
  logits, _ = m.logits(params, b.src, b.src_lengths, tgt_in)
  first = np.asarray(jnp.argmax(logits, -1))[:, 0]
  np.testing.assert_array_equal(first, np.asarray(tokens[:, 0]))


def test_reversed_encoder_and_custom_encoder():
  m = model(encoder=seq2seq_lib.rnn_encoder(jaxrnn.lstm(4), reverse=True))
  params = m.init(jax.random.key(0))
  b = batch()
  assert m.encode(params, b.src, b.src_lengths).shape == (3, 5, 4)
  # Any function xs -> memory plugs in as an Encoder (e.g. a bidirectional stack).
  fwd, bwd = jaxrnn.gru(3), jaxrnn.gru(2)

  def init(key, input_size):
    k1, k2 = jax.random.split(key)
    return (fwd.init(k1, input_size), bwd.init(k2, input_size))

  def apply(p, xs, lengths):
    run = lambda c, pp, r: jaxrnn.unroll(c, pp, c.initial_carry(pp, xs.shape[:-2]), xs, seq_lengths=lengths,
                                         reverse=r)[1]
    return jnp.concatenate([run(fwd, p[0], False), run(bwd, p[1], True)], axis=-1)

  m2 = model(encoder=seq2seq_lib.Encoder(init, apply))
  p2 = m2.init(jax.random.key(0))
  assert m2.encode(p2, b.src, b.src_lengths).shape == (3, 5, 5)
  loss = m2.loss(p2, b.src, b.src_lengths, b.tgt_in, b.tgt_out, b.tgt_lengths)
  assert np.isfinite(float(loss))


def _tiny(V=5):
  """A seq2seq over a 5-token vocabulary (PAD 0, BOS 1, EOS 2): small enough to enumerate every output."""
  return jaxrnn.seq2seq(jaxrnn.gru(4), jaxrnn.gru(4), jaxrnn.luong_attention(), source_vocab_size=V,
                        target_vocab_size=V, embed_size=3, attention_layer_size=4)


@pytest.mark.usefixtures("quick_compiles")  # the module's last test: small programs, each run once or twice
def test_beam_search_is_exact_search_when_wide_and_greedy_when_one():
  import itertools  # pylint: disable=g-import-not-at-top
  V, L = 5, 3
  m = _tiny(V)
  params = jax.tree.map(lambda a: 3.0 * a, m.init(jax.random.key(0)))  # sharper distributions: distinct answers
  src, lengths = jnp.array([[3, 4, 3], [4, 0, 0]]), jnp.array([3, 1])
  beam = jax.jit(m.beam_search, static_argnums=(3, 4))
  tokens, weights = m.greedy_decode(params, src, lengths, L)
  b_tokens, b_weights, _ = beam(params, src, lengths, L, 1)
  np.testing.assert_array_equal(b_tokens, tokens)
  np.testing.assert_allclose(b_weights, weights, atol=1e-6)
  # Exhaustive search over every output of length L (after EOS: PAD at no cost), the same length normalisation.
  seqs = jnp.array(list(itertools.product(range(V), repeat=L)))   # [V^L, L]
  n = seqs.shape[0]
  lg = m.logits(params, jnp.repeat(src, n, 0), jnp.repeat(lengths, n, 0),   # both examples in one call
                jnp.tile(jnp.concatenate([jnp.ones((n, 1), jnp.int32), seqs[:, :-1]], axis=1), (2, 1)))[0]
  logp = jnp.take_along_axis(jax.nn.log_softmax(lg, -1), jnp.tile(seqs, (2, 1))[..., None], -1)[..., 0]
  eos_at = jnp.where((seqs == 2).any(1), jnp.argmax(seqs == 2, axis=1), L)
  live = jnp.arange(L)[None, :] <= eos_at[:, None]
  valid = jnp.all(jnp.where(jnp.arange(L)[None, :] > eos_at[:, None], seqs == 0, True), axis=1)
  length = jnp.minimum(eos_at + 1, L)
  got_tokens, _, got_score = beam(params, src, lengths, L, V * V)  # wide enough to be exact; length_penalty=0.6
  for b in range(2):
    total = jnp.sum(jnp.where(live, logp[b * n:(b + 1) * n], 0.0), 1)
    score = jnp.where(valid, total / ((5.0 + length) / 6.0) ** 0.6, -jnp.inf)
    best = int(jnp.argmax(score))
    np.testing.assert_allclose(got_score[b], score[best], atol=1e-5)
    np.testing.assert_array_equal(got_tokens[b], seqs[best])


def test_eager_calls_compile_once():
  """Outside jit, logits (and so loss), greedy_decode and beam_search compile once per shape and static argument:
  a second call does not trace the decoder's step again (lax.scan compiled its fresh body on every eager call)."""
  decoder, traces = counting(jaxrnn.gru(5))
  m = jaxrnn.seq2seq(jaxrnn.gru(5), decoder, jaxrnn.additive_attention(4), source_vocab_size=digits.VOCAB_SIZE,
                     target_vocab_size=digits.VOCAB_SIZE, embed_size=3)
  params, b = m.init(jax.random.key(0)), batch()
  calls = {"loss": lambda: m.loss(params, b.src, b.src_lengths, b.tgt_in, b.tgt_out, b.tgt_lengths),
           "greedy_decode": lambda: m.greedy_decode(params, b.src, b.src_lengths, 6),
           "beam_search": lambda: m.beam_search(params, b.src, b.src_lengths, 6, 2)}
  for name, call in calls.items():
    first = call()
    count = traces[0]
    assert count > 0
    jax.tree.map(np.testing.assert_array_equal, call(), first)
    assert traces[0] == count, name
  m.greedy_decode(params, b.src, b.src_lengths, 7)  # a new max_length traces again
  assert traces[0] > count
