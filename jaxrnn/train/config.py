"""Training configs: typed, frozen dataclasses, validated from TOML before anything compiles.

A config file has the tables ``[task]``, ``[model]``, ``[optimizer]``, ``[train]`` and ``[distributed]``; every key
is optional and defaults to the field's default below (the defaults are the default run of ``jaxrnn train``: a
character-level LSTM on the Python standard library's source). An unknown key or a bad value raises
:class:`ConfigError` naming the key and the valid choices.

>>> cfg = from_dict({"model": {"cell": "gru", "hidden_size": 16}}, overrides=["optimizer.lr=3e-4"])
>>> cfg.model.cell, cfg.model.hidden_size, cfg.optimizer.lr
('gru', 16, 0.0003)
>>> from_dict({"model": {"cel": "gru"}})
Traceback (most recent call last):
...
jaxrnn.train.config.ConfigError: unknown key 'model.cel'; valid keys: cell, hidden_size, ...
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import tomllib
from typing import Any, Iterable, Mapping, Optional, Tuple

from jaxrnn.train.model import ATTENTION, CELLS

# The cells a config may name: the keys of `jaxrnn.train.model.CELLS` (name -> factory), the one place to extend.
CELL_NAMES = tuple(CELLS)
# model.attention of the seq2seq tasks: the keys of `jaxrnn.train.model.ATTENTION`.
SEQ2SEQ_ATTENTION = tuple(ATTENTION)
SEQ2SEQ_TASKS = ("reverse", "sort")


class ConfigError(ValueError):
  """A config key is unknown or its value is invalid; the message names the key and the valid choices."""


def _field(default: Any, *, choices: Optional[Tuple[Any, ...]] = None, min: Optional[float] = None,
           max: Optional[float] = None, help: str = "") -> Any:
  return dataclasses.field(default=default, metadata={"choices": choices, "min": min, "max": max, "help": help})


@dataclasses.dataclass(frozen=True)
class TaskConfig:
  """``[task]``: what to learn. See :mod:`jaxrnn.train.tasks`."""

  name: str = _field("charlm", choices=("adding", "copy", "charlm", "reverse", "sort"), help="the task")
  seq_len: int = _field(64, min=2, help="adding: T; copy: the delay T (sequences are T+20 long); charlm: BPTT length; "
                                        "reverse/sort: the longest digit string")
  min_len: int = _field(1, min=1, help="reverse/sort: the shortest digit string (lengths are uniform in "
                                       "[min_len, seq_len])")
  corpus_chars: int = _field(1_000_000, min=1000, help="charlm: characters of standard-library source to read")
  val_fraction: float = _field(0.1, min=0.01, max=0.5, help="charlm: held-out fraction (the corpus' tail)")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """``[model]``: an embedding (token tasks) or the raw inputs, recurrent layers, a linear readout."""

  cell: str = _field("lstm", choices=CELL_NAMES, help="the recurrent cell, by name")
  hidden_size: int = _field(256, min=1)
  layers: int = _field(1, min=1, max=16, help="stacked layers (each layer's outputs feed the next)")
  bidirectional: bool = _field(False, help="forward + backward layers (adding; the encoder of reverse/sort)")
  dropout: float = _field(0.0, min=0.0, max=0.95, help="dropout on each layer's input and on the readout")
  embed_size: int = _field(64, min=1, help="token tasks: embedding width")
  dtype: str = _field("float32", choices=("float32", "bfloat16"), help="compute dtype (params stay float32)")
  cell_options: dict = _field(None, help="extra keyword arguments of the cell factory, e.g. {forget_bias = 1.0}")
  # Seq2seq tasks (reverse, sort) only: an encoder and an attention decoder, both of `cell` (layers, bidirectional
  # encoder), see jaxrnn.train.model.make_seq2seq_model.
  attention: str = _field("additive", choices=SEQ2SEQ_ATTENTION,
                          help="reverse/sort: the decoder's attention; none = only the encoder's final output")
  attention_size: int = _field(0, min=0, help="reverse/sort: additive attention size and Luong's attentional "
                                              "layer size; 0 = hidden_size")
  attention_penalty: float = _field(0.0, min=0.0, help="reverse/sort: weight of the doubly stochastic attention "
                                                       "penalty (Xu et al. 2015)")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
  """``[optimizer]``: an optax chain ``clip_by_global_norm -> optimizer(schedule)``."""

  name: str = _field("adam", choices=("adam", "adamw", "rmsprop", "sgd"))
  lr: float = _field(2e-3, min=0.0)
  schedule: str = _field("cosine", choices=("constant", "cosine", "warmup_cosine"))
  warmup_steps: int = _field(0, min=0)
  end_lr_fraction: float = _field(0.1, min=0.0, max=1.0, help="cosine schedules decay to lr * end_lr_fraction")
  weight_decay: float = _field(0.0, min=0.0, help="adamw only")
  momentum: float = _field(0.9, min=0.0, max=1.0, help="sgd (Nesterov off) and rmsprop")
  clip_norm: float = _field(1.0, min=0.0, help="global-norm gradient clipping; 0 turns it off")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """``[train]``: the loop."""

  batch_size: int = _field(32, min=1)
  steps: int = _field(1200, min=1)
  seed: int = _field(0, min=0)
  log_every: int = _field(25, min=1, help="train-loss records in metrics.jsonl and the progress bar")
  eval_every: int = _field(250, min=1)
  eval_batches: int = _field(8, min=1)
  checkpoint_every: int = _field(250, min=1)
  keep_checkpoints: int = _field(3, min=1)
  on_nonfinite: str = _field("stop", choices=("stop", "skip"),
                             help="a step with a NaN/Inf loss or gradient: stop the run, or skip its update")


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
  """``[distributed]``: data-parallel training (:mod:`jaxrnn.train.distributed`); may change when a run resumes."""

  data_parallel: int = _field(0, min=0, help="devices the batch is split over; 0 = all devices of all processes")


@dataclasses.dataclass(frozen=True)
class Config:
  """A whole training config."""

  task: TaskConfig = dataclasses.field(default_factory=TaskConfig)
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
  train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
  distributed: DistributedConfig = dataclasses.field(default_factory=DistributedConfig)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


_SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(Config)}
_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "dict": dict}


def _check_value(key: str, f: dataclasses.Field, value: Any) -> Any:
  kind = _TYPES[f.type]
  meta = f.metadata
  if kind is float and isinstance(value, int) and not isinstance(value, bool):
    value = float(value)
  if kind is dict and value is None:
    return None
  if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
    raise ConfigError(f"{key} must be a {f.type}, got {type(value).__name__} {value!r}")
  if kind is float and not math.isfinite(value):  # NaN passes every min/max comparison
    raise ConfigError(f"{key} = {value!r} is not valid; it must be a finite number")
  if meta["choices"] is not None and value not in meta["choices"]:
    raise ConfigError(f"{key} = {value!r} is not valid; choices: {', '.join(map(str, meta['choices']))}")
  if meta["min"] is not None and value < meta["min"]:
    raise ConfigError(f"{key} = {value!r} is too small; it must be >= {meta['min']}")
  if meta["max"] is not None and value > meta["max"]:
    raise ConfigError(f"{key} = {value!r} is too large; it must be <= {meta['max']}")
  return value


def _section(name: str, cls: type, values: Any) -> Any:
  if not isinstance(values, Mapping):
    raise ConfigError(f"[{name}] must be a table, got {type(values).__name__}")
  fields = {f.name: f for f in dataclasses.fields(cls)}
  kwargs = {}
  for k, v in values.items():
    if k not in fields:
      raise ConfigError(f"unknown key '{name}.{k}'; valid keys: {', '.join(fields)}")
    kwargs[k] = _check_value(f"{name}.{k}", fields[k], v)
  return cls(**kwargs)


def _parse_value(text: str) -> Any:
  """A TOML value (``3e-4``, ``true``, ``"gru"``); bare words are strings."""
  try:
    return tomllib.loads(f"v = {text}")["v"]
  except tomllib.TOMLDecodeError:
    return text


def apply_overrides(raw: dict, overrides: Iterable[str]) -> dict:
  """Applies ``section.key=value`` overrides (values parsed as TOML) to a raw config dict, returns a new dict."""
  raw = {k: dict(v) if isinstance(v, Mapping) else v for k, v in raw.items()}
  for item in overrides:
    path, sep, text = item.partition("=")
    parts = path.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
      raise ConfigError(f"override {item!r} must look like section.key=value, e.g. optimizer.lr=3e-4")
    section, key = parts
    if section not in _SECTIONS:
      raise ConfigError(f"unknown section '{section}' in override {item!r}; valid sections: {', '.join(_SECTIONS)}")
    raw.setdefault(section, {})[key] = _parse_value(text.strip())
  return raw


def from_dict(raw: Mapping[str, Any], overrides: Iterable[str] = ()) -> Config:
  """Validates a raw dict (as read from TOML) plus ``overrides`` into a :class:`Config`.

  Raises:
    ConfigError: an unknown section or key, a value of the wrong type, out of range or not among the choices.
  """
  raw = apply_overrides(dict(raw), overrides)
  sections = {}
  for name, values in raw.items():
    if name not in _SECTIONS:
      raise ConfigError(f"unknown section '[{name}]'; valid sections: {', '.join(_SECTIONS)}")
    sections[name] = _section(name, type(_SECTIONS[name]()), values)
  cfg = Config(**sections)
  _check_combinations(cfg)
  return cfg


def load(path: Optional[str | pathlib.Path] = None, overrides: Iterable[str] = ()) -> Config:
  """Reads a TOML config file (``None``: the default config) and validates it with :func:`from_dict`."""
  if path is None:
    return from_dict({}, overrides)
  path = pathlib.Path(path)
  if not path.is_file():
    raise ConfigError(f"config file {str(path)!r} does not exist")
  try:
    raw = tomllib.loads(path.read_text())
  except tomllib.TOMLDecodeError as e:
    raise ConfigError(f"{path}: not valid TOML: {e}") from None
  return from_dict(raw, overrides)


def _check_combinations(cfg: Config) -> None:
  m = cfg.model
  if cfg.task.name in SEQ2SEQ_TASKS:
    if cfg.task.min_len > cfg.task.seq_len:
      raise ConfigError(f"task.min_len = {cfg.task.min_len} must be <= task.seq_len = {cfg.task.seq_len}")
    if m.dropout != 0.0:
      raise ConfigError(f"model.dropout = {m.dropout} is not supported by task '{cfg.task.name}' (seq2seq); "
                        "it must be 0.0")
    if m.attention == "dot" and m.bidirectional:
      raise ConfigError("model.attention = 'dot' needs query size == memory size; with model.bidirectional = true "
                        "the memory is 2 * hidden_size wide: choose additive, location, luong or scaled_luong")
    return
  for section, key in (("task", "min_len"), ("model", "attention"), ("model", "attention_size"),
                       ("model", "attention_penalty")):
    if getattr(getattr(cfg, section), key) != getattr(type(getattr(cfg, section))(), key):
      raise ConfigError(f"{section}.{key} only applies to the seq2seq tasks ({', '.join(SEQ2SEQ_TASKS)}), not "
                        f"task '{cfg.task.name}'")
  if cfg.model.bidirectional and cfg.task.name != "adding":
    raise ConfigError(f"model.bidirectional = true needs a task with one final output (adding) or an encoder "
                      f"(reverse, sort); task "
                      f"'{cfg.task.name}' predicts every step causally, where a backward layer would see the answer")
