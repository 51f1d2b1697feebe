"""Config validation: unknown keys and bad values name the key and the valid choices; overrides; shipped configs."""

import pathlib

import pytest

from jaxrnn.train import config

CONFIGS = sorted((pathlib.Path(__file__).resolve().parent.parent / "configs").glob("*.toml"))


@pytest.mark.parametrize("raw, message", [
    ({"model": {"cel": "gru"}}, "unknown key 'model.cel'; valid keys: cell, hidden_size"),
    ({"modle": {}}, "unknown section '[modle]'; valid sections: task, model, optimizer, train, distributed"),
    ({"model": {"cell": "transformer"}}, "model.cell = 'transformer' is not valid; choices: simple_rnn, lstm, gru"),
    ({"optimizer": {"name": "lamb"}}, "choices: adam, adamw, rmsprop, sgd"),
    ({"optimizer": {"schedule": "step"}}, "choices: constant, cosine, warmup_cosine"),
    ({"task": {"name": "mnist"}}, "task.name = 'mnist' is not valid; choices: adding, charlm, copy, reverse, sort"),
    ({"task": {"name": "adding", "corpus_chars": 5}}, "task.corpus_chars is not a key of task 'adding' (a key of "
                                                      "task charlm); valid keys: name, seq_len"),
    ({"model": {"hidden_size": "big"}}, "model.hidden_size must be a int, got str 'big'"),
    ({"model": {"hidden_size": 0}}, "model.hidden_size = 0 is too small; it must be >= 1"),
    ({"train": {"steps": True}}, "train.steps must be a int, got bool"),
    ({"model": {"dropout": 1.5}}, "model.dropout = 1.5 is too large"),
    ({"model": {"dtype": "float16"}}, "choices: float32, bfloat16"),
    ({"model": "lstm"}, "[model] must be a table"),
    ({"model": {"bidirectional": True}}, "model.bidirectional = true needs a task with one final output"),
])
def test_bad_config_names_key_and_choices(raw, message):
  with pytest.raises(config.ConfigError) as e:
    config.from_dict(raw)
  assert message in str(e.value)


def test_overrides_parse_toml_values():
  cfg = config.from_dict({}, ["optimizer.lr=3e-4", "model.cell=gru", "train.steps=7", 'task.name="adding"',
                              "model.cell_options={reset_after = false}"])
  assert cfg.optimizer.lr == 3e-4 and cfg.model.cell == "gru" and cfg.train.steps == 7
  assert cfg.task.name == "adding" and cfg.model.cell_options == {"reset_after": False}
  assert cfg.model.hidden_size == config.ModelConfig().hidden_size  # untouched
  for bad, msg in [("lr=1", "must look like section.key=value"), ("optim.lr=1", "unknown section 'optim'"),
                   ("optimizer.rate=1", "unknown key 'optimizer.rate'")]:
    with pytest.raises(config.ConfigError, match=msg):
      config.from_dict({}, [bad])


def test_int_promotes_to_float():
  assert config.from_dict({"optimizer": {"lr": 1}}).optimizer.lr == 1.0


def test_missing_and_invalid_files(tmp_path):
  with pytest.raises(config.ConfigError, match="does not exist"):
    config.load(tmp_path / "nope.toml")
  bad = tmp_path / "bad.toml"
  bad.write_text("[model\n")
  with pytest.raises(config.ConfigError, match="not valid TOML"):
    config.load(bad)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
  config.load(path)


def test_default_toml_equals_builtin_default():
  assert config.load(CONFIGS[0].parent / "default.toml") == config.load(None) == config.Config()


def test_bad_cell_options_name_the_cell():
  from jaxrnn.train import model
  from jaxrnn.train.tasks import adding
  cfg = config.from_dict({"model": {"cell_options": {"nonsense": 1}}})
  with pytest.raises(ValueError, match="model.cell_options"):
    model.make_model(cfg.model, adding.task(4))
