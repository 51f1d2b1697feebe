"""The `jaxrnn` command on a tiny config: train, resume, extend, eval, sample, compare (configs with per-config
overrides, run directories), list, named configs, and a bad config's message."""

import json
import os

import jax
import pytest

from jaxrnn import cli
from jaxrnn.train import config



@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
  """Each `jaxrnn` command builds its run afresh (no module-level caches), as separate processes would: the same
  programs compiled again by the next command of a test are read from JAX's persistent compilation cache."""
  keys = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
          "jax_persistent_cache_min_entry_size_bytes")
  before = {k: getattr(jax.config, k) for k in keys}
  jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jit")))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  yield
  for k, v in before.items():
    jax.config.update(k, v)
  from jax._src import compilation_cache  # pylint: disable=g-import-not-at-top (private: no public reset)
  compilation_cache.reset_cache()  # later modules do not write into this module's cache


TINY = """
[task]
name = "{task}"
seq_len = 5
{task_keys}
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
  cfg.write_text(TINY.format(task="charlm", cell="lstm", task_keys="corpus_chars = 4000"))
  run = tmp_path / "run"
  assert cli.main(["train", str(cfg), "--run-dir", str(run), "--no-progress", "--set", "train.log_every=1"]) == 0
  out = capsys.readouterr().out
  assert "loss curve:" in out and "samples:" in out and "eval_loss" in out
  assert (run / "loss_curve.png").stat().st_size > 1000 and (run / "samples.txt").is_file()
  # Same command again: nothing left to do, it resumes at the end; nothing unmeasured prints as nan.
  assert cli.main(["train", str(cfg), "--run-dir", str(run), "--no-progress", "--set", "train.log_every=1"]) == 0
  out = capsys.readouterr().out
  assert "resuming" in out and "nan" not in out
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
    p.write_text(TINY.format(task="adding", cell=cell, task_keys=""))
    paths.append(str(p))
  # Per-config overrides after '@'; --set applies to every config.
  assert cli.main(["compare", paths[0], paths[1] + "@model.hidden_size=3", "--set", "train.steps=3",
                   "--out", str(tmp_path / "cmp"), "--no-progress"]) == 0
  out = capsys.readouterr().out
  assert "add_simple_rnn" in out and "add_gru@model.hidden_size=3" in out
  assert (tmp_path / "cmp" / "compare.png").is_file() and (tmp_path / "cmp" / "compare.md").is_file()
  gru = tmp_path / "cmp" / "add_gru@model.hidden_size=3"
  saved = json.loads((gru / "config.json").read_text())
  assert saved["model"]["hidden_size"] == 3 and saved["train"]["steps"] == 3
  assert json.loads((tmp_path / "cmp" / "add_simple_rnn" / "config.json").read_text())["model"]["hidden_size"] == 4
  # Existing run directories are summarised as they are (not trained again).
  before = (gru / "metrics.jsonl").read_text()
  assert cli.main(["compare", str(gru), str(tmp_path / "cmp" / "add_simple_rnn"), "--out",
                   str(tmp_path / "cmp2")]) == 0
  out = capsys.readouterr().out
  assert "run directory" in out and "nan" not in out and (gru / "metrics.jsonl").read_text() == before
  assert cli.main(["sample", str(gru)]) == 2  # not a language model: a message
  assert "sampling needs" in capsys.readouterr().err


def test_extend_a_finished_run(tmp_path, capsys):
  cfg = tmp_path / "add.toml"
  cfg.write_text(TINY.format(task="adding", cell="gru", task_keys=""))
  run = tmp_path / "run"
  argv = ["train", str(cfg), "--run-dir", str(run), "--no-progress"]
  assert cli.main(argv) == 0
  capsys.readouterr()
  assert cli.main(argv + ["--set", "train.steps=6"]) == 2  # more steps without --extend: refused, with the hint
  err = capsys.readouterr().err
  assert "train.steps = 4, not 6" in err and "--extend" in err and "--run-dir" not in err
  assert cli.main(argv + ["--set", "train.steps=6", "--extend"]) == 0
  out = capsys.readouterr().out
  assert "extending" in out and "train.steps: 4 -> 6" in out and "resuming" in out
  assert json.loads((run / "config.json").read_text())["train"]["steps"] == 6
  assert cli.main(["eval", str(run)]) == 0 and json.loads(capsys.readouterr().out)["step"] == 6
  assert cli.main(argv + ["--set", "train.steps=5", "--extend"]) == 2  # fewer steps than done
  assert "below step 6" in capsys.readouterr().err


def test_list_and_named_configs_from_any_directory(tmp_path, capsys):
  assert cli.main(["list"]) == 0
  out = capsys.readouterr().out
  for word in ("adding", "mnist1d", "ucr", "sklearn_digits", "task.dataset", "min_gru", "adding_lstm",
               "ucr_japanese_vowels_gru"):
    assert word in out
  assert config.load("adding_lstm") == config.load(config.CONFIG_DIR / "adding_lstm.toml")
  cwd = os.getcwd()
  try:
    os.chdir(tmp_path)  # outside a checkout: the README's path and the bare name both find the shipped config
    assert config.load("configs/adding_lstm.toml") == config.load("adding_lstm")
    with pytest.raises(config.ConfigError,
                       match="does not exist: neither a file nor a shipped config; shipped configs: adding_gru"):
      config.load("adding_lstn")
  finally:
    os.chdir(cwd)


def test_every_flag_has_help():
  parser = cli._parser()  # pylint: disable=protected-access
  for sub in parser._subparsers._group_actions[0].choices.values():  # pylint: disable=protected-access
    for action in sub._actions:  # pylint: disable=protected-access
      assert action.help, (sub.prog, action.dest)


def test_bad_config_exits_2_with_message(tmp_path, capsys):
  assert cli.main(["train", "--set", "model.cell=lstn", "--run-dir", str(tmp_path)]) == 2
  err = capsys.readouterr().err
  assert "model.cell = 'lstn' is not valid; choices: simple_rnn, lstm, gru, irnn" in err
