"""The `jaxrnn` command on a tiny config: train, resume, eval, sample, compare, and a bad config's message."""

import json

from jaxrnn import cli

TINY = """
[task]
name = "{task}"
seq_len = 5
corpus_chars = 4000
[model]
cell = "{cell}"
hidden_size = 4
embed_size = 3
[train]
batch_size = 2
steps = 4
eval_every = 2
eval_batches = 1
checkpoint_every = 2
"""


def test_train_eval_sample(tmp_path, capsys):
  cfg = tmp_path / "tiny.toml"
  cfg.write_text(TINY.format(task="charlm", cell="lstm"))
  run = tmp_path / "run"
  assert cli.main(["train", str(cfg), "--run-dir", str(run), "--no-progress", "--set", "train.log_every=1"]) == 0
  out = capsys.readouterr().out
  assert "loss curve:" in out and "samples:" in out and "eval_loss" in out
  assert (run / "loss_curve.png").stat().st_size > 1000 and (run / "samples.txt").is_file()
  # Same command again: nothing left to do, it resumes at the end.
  assert cli.main(["train", str(cfg), "--run-dir", str(run), "--no-progress", "--set", "train.log_every=1"]) == 0
  assert "resuming" in capsys.readouterr().out
  assert cli.main(["eval", str(run)]) == 0
  assert json.loads(capsys.readouterr().out)["step"] == 4
  assert cli.main(["sample", str(run), "--prompt", "for ", "--length", "10", "--top-k", "3", "--seed", "1"]) == 0
  first = capsys.readouterr().out
  assert first.startswith("for ")
  cli.main(["sample", str(run), "--prompt", "for ", "--length", "10", "--top-k", "3", "--seed", "1"])
  assert capsys.readouterr().out == first
  assert cli.main(["sample", str(run), "--prompt", "\u00e9"]) == 2  # no ASCII character in the prompt
  assert "prompt must hold at least one ASCII character" in capsys.readouterr().err


def test_compare(tmp_path, capsys):
  paths = []
  for cell in ("simple_rnn", "gru"):
    p = tmp_path / f"add_{cell}.toml"
    p.write_text(TINY.format(task="adding", cell=cell))
    paths.append(str(p))
  assert cli.main(["compare", *paths, "--out", str(tmp_path / "cmp"), "--no-progress"]) == 0
  out = capsys.readouterr().out
  assert "add_simple_rnn" in out and "add_gru" in out
  assert (tmp_path / "cmp" / "compare.png").is_file() and (tmp_path / "cmp" / "compare.md").is_file()
  assert cli.main(["sample", str(tmp_path / "cmp" / "add_gru")]) == 2  # not a language model: a message
  assert "sampling needs" in capsys.readouterr().err


def test_bad_config_exits_2_with_message(tmp_path, capsys):
  assert cli.main(["train", "--set", "model.cell=lstn", "--run-dir", str(tmp_path)]) == 2
  err = capsys.readouterr().err
  assert "model.cell = 'lstn' is not valid; choices: simple_rnn, lstm, gru, irnn" in err
