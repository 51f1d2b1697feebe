"""Seq2seq with and without attention on digit-string reversal (issue 8's acceptance check).

Trains the same GRU encoder-decoder twice on reversal of random digit strings (lengths in [--min-length, 30]):
once with additive (Bahdanau) attention, once with ``last_position_attention`` (the decoder sees only the
encoder's final output: the attention-free encoder-decoder of Cho et al. 2014). Prints the exact-sequence
accuracy of greedy decoding on fresh strings of length exactly --eval-length.

    python benchmarks/seq2seq_reversal.py --steps 2000
"""

import argparse
import functools
import time

import jax
import optax

import jaxrnn
from jaxrnn.train.tasks import digits


def build(attention: bool, hidden: int, embed: int):
  mechanism = jaxrnn.additive_attention(hidden) if attention else jaxrnn.last_position_attention()
  return jaxrnn.seq2seq(jaxrnn.gru(hidden), jaxrnn.gru(hidden), mechanism, source_vocab_size=digits.VOCAB_SIZE,
                        target_vocab_size=digits.VOCAB_SIZE, embed_size=embed, attention_layer_size=hidden)


def train(model, args, seed, label):
  lr = args.lr if args.schedule == "constant" else optax.cosine_decay_schedule(args.lr, args.steps, alpha=0.05)
  opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(lr))
  params = model.init(jax.random.key(seed))
  state = opt.init(params)
  make = functools.partial(digits.digit_task, batch_size=args.batch, max_length=args.max_length,
                           min_length=args.min_length, task=args.task)

  @jax.jit
  def step(params, state, key):
    b = make(key)
    loss, g = jax.value_and_grad(model.loss)(params, b.src, b.src_lengths, b.tgt_in, b.tgt_out, b.tgt_lengths)
    updates, state = opt.update(g, state, params)
    return optax.apply_updates(params, updates), state, loss

  @jax.jit
  def evaluate(params, key):
    b = digits.digit_task(key, args.eval_batch, max_length=args.eval_length, min_length=args.eval_length,
                         task=args.task)
    tokens, _ = model.greedy_decode(params, b.src, b.src_lengths, args.eval_length + 1)
    return digits.sequence_accuracy(tokens, b.tgt_out, b.tgt_lengths)

  key = jax.random.key(seed + 1)
  start = time.time()
  acc = 0.0
  for i in range(1, args.steps + 1):
    key, k = jax.random.split(key)
    params, state, loss = step(params, state, k)
    if i % args.eval_every == 0 or i == args.steps:
      acc = float(evaluate(params, jax.random.key(10_000 + i)))
      print(f"[{label}] step {i:5d}  loss {float(loss):.4f}  exact-seq acc (len {args.eval_length}) {acc:.4f}  "
            f"{time.time() - start:.0f}s", flush=True)
      if acc >= args.stop_at:
        break
  return float(evaluate(params, jax.random.key(123_456))), i


def main():
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--task", default="reverse", choices=digits.KINDS)
  p.add_argument("--steps", type=int, default=2000)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--hidden", type=int, default=64)
  p.add_argument("--embed", type=int, default=32)
  p.add_argument("--lr", type=float, default=3e-3)
  p.add_argument("--schedule", default="constant", choices=("constant", "cosine"))
  p.add_argument("--max-length", type=int, default=30)
  p.add_argument("--min-length", type=int, default=10)
  p.add_argument("--eval-length", type=int, default=30)
  p.add_argument("--eval-batch", type=int, default=1000)
  p.add_argument("--eval-every", type=int, default=250)
  p.add_argument("--stop-at", type=float, default=0.995, help="stop a run early at this eval accuracy")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--only", choices=("attention", "no-attention"), help="train only one of the two models")
  args = p.parse_args()
  results = {}
  for attention in (True, False):
    if args.only and args.only != ("attention" if attention else "no-attention"):
      continue
    label = "attention" if attention else "no attention"
    results[label] = train(build(attention, args.hidden, args.embed), args, args.seed, label)
  print(f"\nexact-sequence accuracy, {args.task} of length-{args.eval_length} strings ({args.eval_batch} fresh "
        f"examples, greedy decoding):")
  for label, (acc, steps) in results.items():
    print(f"  {label:13s} {acc:.4f}  after {steps} steps")


if __name__ == "__main__":
  main()
