"""Training configs: typed, frozen dataclasses, validated from TOML before anything compiles.

A config file has the tables ``[task]``, ``[model]``, ``[optimizer]``, ``[train]`` and ``[distributed]``; every key
is optional and defaults to the field's default below (the defaults are the default run of ``jaxrnn train``: a
character-level LSTM on the Python standard library's source). ``task.name`` picks a task of the registry
(:data:`jaxrnn.train.tasks.TASKS`), whose own config class owns the other ``[task]`` keys. The choices of
``model.cell`` and ``model.attention`` are the keys of :mod:`jaxrnn.train.cells`' registries. An unknown key or a
bad value raises :class:`ConfigError` naming the key and the valid choices.

>>> cfg = from_dict({"model": {"cell": "gru", "hidden_size": 16}}, overrides=["optimizer.lr=3e-4"])
>>> cfg.model.cell, cfg.model.hidden_size, cfg.optimizer.lr
('gru', 16, 0.0003)
>>> from_dict({"model": {"cel": "gru"}})
Traceback (most recent call last):
...
jaxrnn.train.fields.ConfigError: unknown key 'model.cel'; valid keys: cell, hidden_size, ...
"""

from __future__ import annotations

import dataclasses
import pathlib
import tomllib
from typing import Any, Iterable, Mapping, Optional

from jaxrnn.train import cells, tasks
from jaxrnn.train.fields import ConfigError, field as _field, section as _section_of
from jaxrnn.train.tasks import TaskConfig

__all__ = ["CELL_NAMES", "Config", "ConfigError", "DEFAULT_TASK", "DistributedConfig", "ModelConfig",
           "OptimizerConfig", "SEQ2SEQ_ATTENTION", "TrainConfig", "apply_overrides", "from_dict",
           "load", "named_configs", "resolve"]

# The choices of model.cell, model.attention and task.name: the keys of their registries, extended there.
CELL_NAMES = tuple(cells.CELLS)
SEQ2SEQ_ATTENTION = tuple(cells.ATTENTION)
DEFAULT_TASK = "charlm"


def _seq2seq_tasks() -> tuple:
  return tuple(n for n, s in tasks.TASKS.items() if s.readout == "seq2seq")


def _default_task() -> TaskConfig:
  return tasks.TASKS[DEFAULT_TASK].config(name=DEFAULT_TASK)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """``[model]``: an embedding (token tasks) or the raw inputs, recurrent layers, a linear readout."""

  cell: str = _field("lstm", choices=CELL_NAMES, help="the recurrent cell, by name")
  hidden_size: int = _field(256, min=1)
  layers: int = _field(1, min=1, max=16, help="stacked layers (each layer's outputs feed the next)")
  bidirectional: bool = _field(False, help="forward + backward layers (tasks with one final output; the encoder of "
                                                "seq2seq tasks)")
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

  task: TaskConfig = dataclasses.field(default_factory=_default_task)  # the config class of task.name
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
  train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
  distributed: DistributedConfig = dataclasses.field(default_factory=DistributedConfig)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


_SECTIONS = {name: type(section) for name, section in vars(Config()).items()}  # the section classes, by name


def _task_section(values: Any) -> TaskConfig:
  """``[task]``: ``name`` picks the task, whose config class owns the other keys."""
  if not isinstance(values, Mapping):
    raise ConfigError(f"[task] must be a table, got {type(values).__name__}")
  name = values.get("name", DEFAULT_TASK)
  if name not in tasks.TASKS:
    raise ConfigError(f"task.name = {name!r} is not valid; choices: {', '.join(tasks.TASKS)}")
  spec = tasks.TASKS[name]
  for key in values:
    if key != "name" and key not in {f.name for f in dataclasses.fields(spec.config)}:
      owners = [n for n, s in tasks.TASKS.items() if key in {f.name for f in dataclasses.fields(s.config)}]
      hint = f" (a key of task {', '.join(owners)})" if owners else ""
      raise ConfigError(f"task.{key} is not a key of task {name!r}{hint}; valid keys: "
                        f"{', '.join(f.name for f in dataclasses.fields(spec.config))}")
  return _section_of("task", spec.config, values, name=name)


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
    sections[name] = _task_section(values) if name == "task" else _section_of(name, _SECTIONS[name], values)
  cfg = Config(**sections)
  _check_combinations(cfg)
  return cfg


CONFIG_DIR = pathlib.Path(__file__).resolve().parent / "configs"  # the configs shipped with the package


def named_configs() -> dict:
  """``{name: path}`` of the configs shipped with the package (``jaxrnn train NAME`` from any directory)."""
  return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.toml"))}


def resolve(config: str | pathlib.Path) -> pathlib.Path:
  """The file of ``config``: a path to a TOML file, or the name of a shipped config (``adding_lstm``).

  Raises:
    ConfigError: neither exists; the message lists the shipped names.
  """
  path = pathlib.Path(config)
  if path.is_file():
    return path
  shipped = named_configs()
  if str(config) in shipped:
    return shipped[str(config)]
  if path.suffix == ".toml" and path.stem in shipped and not path.parent.is_dir():
    return shipped[path.stem]  # configs/adding_lstm.toml outside a checkout: the shipped copy
  raise ConfigError(f"config {str(config)!r} does not exist: neither a file nor a shipped config; shipped configs: "
                    f"{', '.join(shipped)} (jaxrnn list)")


def load(config: Optional[str | pathlib.Path] = None, overrides: Iterable[str] = ()) -> Config:
  """Reads a TOML config (a path or a shipped config's name, see :func:`resolve`; ``None``: the default config)
  and validates it with :func:`from_dict`."""
  if config is None:
    return from_dict({}, overrides)
  path = resolve(config)
  try:
    raw = tomllib.loads(path.read_text())
  except tomllib.TOMLDecodeError as e:
    raise ConfigError(f"{path}: not valid TOML: {e}") from None
  return from_dict(raw, overrides)


def _check_combinations(cfg: Config) -> None:
  """Checks derived from the task's declared readout, then the task's own check."""
  m = cfg.model
  spec = tasks.TASKS[cfg.task.name]
  if spec.readout == "seq2seq":
    if m.dropout != 0.0:
      raise ConfigError(f"model.dropout = {m.dropout} is not supported by task '{cfg.task.name}' (seq2seq); "
                        "it must be 0.0")
    if m.attention == "dot" and m.bidirectional:
      raise ConfigError("model.attention = 'dot' needs query size == memory size; with model.bidirectional = true "
                        "the memory is 2 * hidden_size wide: choose additive, location, luong or scaled_luong")
  else:
    for key in ("attention", "attention_size", "attention_penalty"):
      if getattr(m, key) != getattr(ModelConfig(), key):
        raise ConfigError(f"model.{key} only applies to the seq2seq tasks ({', '.join(_seq2seq_tasks())}), not "
                          f"task '{cfg.task.name}'")
  if m.bidirectional and spec.readout == "all":
    raise ConfigError(f"model.bidirectional = true needs a task with one final output or an encoder; task "
                      f"'{cfg.task.name}' predicts every step causally, where a backward layer would see the answer")
  if spec.check is not None:
    spec.check(cfg.task)
