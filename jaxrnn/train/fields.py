"""Typed config fields: the :class:`ConfigError`, the field declaration every config section and task config uses,
and the validation of one TOML table against a frozen dataclass of such fields.

A field is a dataclass field whose metadata holds its ``choices``, ``min``, ``max`` and ``help`` (``jaxrnn list``
prints the help). Its annotation is ``str``, ``int``, ``float``, ``bool`` or ``dict`` (or that name as a string,
under ``from __future__ import annotations``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Optional, Tuple, cast


class ConfigError(ValueError):
  """A config key is unknown or its value is invalid; the message names the key and the valid choices."""


def field(default: Any, *, choices: Optional[Tuple[Any, ...]] = None, min: Optional[float] = None,
          max: Optional[float] = None, help: str = "") -> Any:
  """A config field with its default, valid ``choices`` or range ``[min, max]``, and a help text."""
  return dataclasses.field(default=default, metadata={"choices": choices, "min": min, "max": max, "help": help})


_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "dict": dict}


def check_value(key: str, f: dataclasses.Field, value: Any) -> Any:
  """``value`` checked against field ``f`` (type, finiteness, choices, range); ints promote to floats.

  Raises:
    ConfigError: naming ``key``, what was expected and what was given.
  """
  kind = _TYPES[f.type] if isinstance(f.type, str) else f.type  # "int" (postponed annotations) or int
  if kind not in _TYPES.values():
    raise TypeError(f"{key}: a config field is a str, int, float, bool or dict, not {f.type!r}")
  meta = f.metadata
  if kind is float and isinstance(value, int) and not isinstance(value, bool):
    value = float(value)
  if kind is dict and value is None:
    return None
  if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
    raise ConfigError(f"{key} must be a {f.type}, got {type(value).__name__} {value!r}")
  if kind is float and not math.isfinite(cast(float, value)):  # NaN passes every min/max comparison
    raise ConfigError(f"{key} = {value!r} is not valid; it must be a finite number")
  if meta.get("choices") is not None and value not in meta["choices"]:
    raise ConfigError(f"{key} = {value!r} is not valid; choices: {', '.join(map(str, meta['choices']))}")
  if meta.get("min") is not None and value < meta["min"]:
    raise ConfigError(f"{key} = {value!r} is too small; it must be >= {meta['min']}")
  if meta.get("max") is not None and value > meta["max"]:
    raise ConfigError(f"{key} = {value!r} is too large; it must be <= {meta['max']}")
  return value


def section(title: str, cls: type, values: Any, *, unknown_hint: str = "", **fixed: Any) -> Any:
  """``cls(**fixed, **values)`` after checking every key of the table ``[title]`` against ``cls``'s fields.

  Args:
    title: the section's name, for messages (``"model"``).
    cls: a frozen dataclass of :func:`field` fields.
    values: the table as read from TOML.
    unknown_hint: appended to the message of an unknown key.
    **fixed: values set by the caller, not read from the table (a task config's ``name``).
  """
  if not isinstance(values, Mapping):
    raise ConfigError(f"[{title}] must be a table, got {type(values).__name__}")
  fields = {f.name: f for f in dataclasses.fields(cls)}
  kwargs = dict(fixed)
  for k, v in values.items():
    if k in fixed:
      continue
    if k not in fields:
      raise ConfigError(f"unknown key '{title}.{k}'{unknown_hint}; valid keys: {', '.join(fields)}")
    kwargs[k] = check_value(f"{title}.{k}", fields[k], v)
  return cls(**kwargs)


def describe(cls: type, prefix: str) -> list:
  """``[(key, default, help)]`` of ``cls``'s fields, keys as ``prefix.name`` (for ``jaxrnn list``)."""
  out = []
  for f in dataclasses.fields(cls):
    meta = f.metadata
    extra = f" (choices: {', '.join(map(str, meta['choices']))})" if meta.get("choices") else ""
    out.append((f"{prefix}.{f.name}", f.default, (meta.get("help") or "") + extra))
  return out
