"""`jaxrnn train` on the seq2seq digit tasks (reverse, sort): config validation, a tiny run, eval's accuracies."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from jaxrnn import cli
from jaxrnn.attention import seq2seq as s2s
from jaxrnn.train import config, model
from jaxrnn.train.tasks import digits

TINY = """
[task]
name = "reverse"
seq_len = 4
min_len = 2
[model]
cell = "gru"
hidden_size = 5
embed_size = 3
attention = "{attention}"
attention_penalty = 0.1
[optimizer]
lr = 3e-2
schedule = "constant"
[train]
batch_size = 3
steps = 40
log_every = 5
eval_every = 20
eval_batches = 1
checkpoint_every = 20
"""


@pytest.mark.parametrize("raw, message", [
    ({"model": {"attention": "bahdanau"}},
     "model.attention = 'bahdanau' is not valid; choices: additive, location, luong, scaled_luong, dot, none"),
    ({"model": {"atention": "none"}}, "unknown key 'model.atention'; valid keys: cell, hidden_size"),
    ({"model": {"attention_size": -1}}, "model.attention_size = -1 is too small; it must be >= 0"),
    ({"model": {"attention_penalty": "big"}}, "model.attention_penalty must be a float, got str"),
    ({"task": {"min_len": 0}}, "task.min_len = 0 is too small; it must be >= 1"),
    ({"task": {"seq_len": 5, "min_len": 6}}, "task.min_len = 6 must be <= task.seq_len = 5"),
    ({"model": {"dropout": 0.1}}, "model.dropout = 0.1 is not supported by task 'reverse'"),
    ({"model": {"attention": "dot", "bidirectional": True}}, "model.attention = 'dot' needs query size == memory"),
])
def test_seq2seq_config_errors_name_the_key(raw, message):
  raw = {"task": {"name": "reverse", **raw.get("task", {})}, **{k: v for k, v in raw.items() if k != "task"}}
  with pytest.raises(config.ConfigError) as e:
    config.from_dict(raw)
  assert message in str(e.value)


@pytest.mark.parametrize("key, value", [("model.attention", '"none"'), ("model.attention_size", "3"),
                                        ("model.attention_penalty", "0.5"), ("task.min_len", "2")])
def test_seq2seq_keys_refused_on_other_tasks(key, value):
  message = ("task.min_len is not a key of task 'adding' .a key of task reverse, sort.; valid keys: name, seq_len"
             if key == "task.min_len" else
             f"{key} only applies to the seq2seq tasks .reverse, sort., not task 'adding'")
  with pytest.raises(config.ConfigError, match=message):
    config.from_dict({"task": {"name": "adding"}}, [f"{key}={value}"])


def test_seq2seq_config_builds_the_attention_model():
  cfg = config.from_dict({"task": {"name": "sort", "seq_len": 4}, "model": {"attention": "luong", "layers": 2,
                                                                            "bidirectional": True}})
  assert cfg.model.attention == "luong" and set(config.SEQ2SEQ_ATTENTION) == set(model.ATTENTION)


def test_doubly_stochastic_penalty_in_seq2seq_loss():
  # sequence_loss (what Seq2Seq.loss computes from its teacher-forced logits and weights) against NumPy.
  k1, k2 = jax.random.split(jax.random.key(0))
  logits = jax.random.normal(k1, (2, 4, 5))  # [B, M, V]
  weights = jax.nn.softmax(jax.random.normal(k2, (2, 4, 3)), axis=-1)  # [B, M, N]
  tgt_out, tgt_lengths, src_lengths = jnp.array([[1, 2, 3, 0], [4, 0, 0, 0]]), jnp.array([3, 1]), jnp.array([3, 2])
  plain = s2s.sequence_loss(logits, weights, tgt_out, tgt_lengths, src_lengths)
  penalised = s2s.sequence_loss(logits, weights, tgt_out, tgt_lengths, src_lengths, doubly_stochastic_weight=0.5)
  lg, w = np.asarray(logits, np.float64), np.asarray(weights, np.float64)
  logp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
  valid_t = np.arange(4)[None, :] < np.asarray(tgt_lengths)[:, None]
  valid_s = np.arange(3)[None, :] < np.asarray(src_lengths)[:, None]
  nll = -np.take_along_axis(logp, np.asarray(tgt_out)[..., None], -1)[..., 0]
  xent = nll[valid_t].mean()
  penalty = np.where(valid_s, (1.0 - np.where(valid_t[..., None], w, 0.0).sum(1)) ** 2, 0.0).sum(-1).mean()
  np.testing.assert_allclose(float(plain), xent, rtol=1e-5)
  np.testing.assert_allclose(float(penalised), xent + 0.5 * penalty, rtol=1e-5)
  grad = jax.grad(lambda w: s2s.sequence_loss(logits, w, tgt_out, tgt_lengths, src_lengths,
                                              doubly_stochastic_weight=0.5))(weights)
  assert float(jnp.abs(grad).sum()) > 0
  with pytest.raises(ValueError, match="doubly_stochastic_weight must be >= 0"):
    s2s.sequence_loss(logits, weights, tgt_out, tgt_lengths, src_lengths, doubly_stochastic_weight=-1.0)


def test_digit_tasks():
  b = digits.digit_task(jax.random.key(0), 3, max_length=6, min_length=1, task="sort")
  for i in range(3):
    n = int(b.src_lengths[i])
    src = np.asarray(b.src[i])
    assert np.all(src[n:] == digits.PAD) and np.all(src[:n] >= digits.FIRST_DIGIT)
    np.testing.assert_array_equal(np.asarray(b.tgt_out[i, :n]), np.sort(src[:n]))
    assert int(b.tgt_out[i, n]) == digits.EOS and int(b.tgt_in[i, 0]) == digits.BOS
    np.testing.assert_array_equal(np.asarray(b.tgt_in[i, 1:n + 1]), np.sort(src[:n]))
  assert float(digits.sequence_accuracy(b.tgt_out, b.tgt_out, b.tgt_lengths)) == 1.0
  with pytest.raises(ValueError, match="task"):
    digits.digit_task(jax.random.key(0), 2, task="copy")


def test_old_places_of_the_digit_data_warn_and_name_the_new_one():
  """``jaxrnn.attention.tasks`` (and ``jaxrnn.attention_tasks``) keep working one release, warning."""
  from jaxrnn.attention import tasks as old  # pylint: disable=g-import-not-at-top
  for name, new in (("digit_task", "digit_task"), ("VOCAB_SIZE", "VOCAB_SIZE"), ("TASKS", "KINDS"),
                    ("token_accuracy", "token_accuracy")):
    message = (f"jaxrnn.attention.tasks.{name} is deprecated and will be removed in the next release; use "
               f"jaxrnn.train.tasks.digits.{new}")
    with pytest.warns(DeprecationWarning, match=f"^{message}$"):
      assert getattr(old, name) is getattr(digits, new)
  assert digits.KINDS == ("reverse", "sort")
  with pytest.raises(AttributeError, match="has no attribute 'nope'"):
    _ = old.nope
  with pytest.warns(DeprecationWarning, match="use jaxrnn.train.tasks.digits$"):
    assert jaxrnn.attention_tasks is digits
  assert "tasks" not in jaxrnn.attention.__all__ and "digit_task" not in vars(old)


def test_token_accuracy():
  tgt = jnp.array([[5, 6, digits.EOS], [7, digits.EOS, 0]])
  pred = jnp.array([[5, 4, digits.EOS, 3], [7, digits.EOS, 9, 9]])
  assert float(digits.token_accuracy(pred, tgt, jnp.array([3, 2]))) == pytest.approx(0.8)
  assert float(digits.sequence_accuracy(pred, tgt, jnp.array([3, 2]))) == pytest.approx(0.5)


def test_train_reverse_loss_decreases_and_eval_prints_accuracies(tmp_path, capsys):
  cfg = tmp_path / "rev.toml"
  cfg.write_text(TINY.format(attention="additive"))
  run = tmp_path / "run"
  assert cli.main(["train", str(cfg), "--run-dir", str(run), "--no-progress"]) == 0
  out = capsys.readouterr().out
  assert "exact_acc" in out and "token_acc" in out and "reverse" in out
  rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
  train = [r["loss"] for r in rows if r["split"] == "train"]
  assert train[-1] < 0.9 * train[0]
  accs = {r["metric"] for r in rows if "metric" in r}
  assert accs == {"exact_acc", "token_acc"}
  assert (run / "loss_curve.png").is_file()
  assert cli.main(["eval", str(run)]) == 0
  result = json.loads(capsys.readouterr().out)
  assert result["step"] == 40 and result["metric"] == "xent"
  assert 0.0 <= result["exact_acc"] <= result["token_acc"] <= 1.0  # 40 tiny steps: accuracies still near 0
