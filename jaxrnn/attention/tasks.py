"""Deprecated: the digit-task data moved to :mod:`jaxrnn.train.tasks.digits` (``jaxrnn.attention`` holds models
only). Every old name still works in this release with a ``DeprecationWarning`` naming its new place, and will be
removed in the next one; ``TASKS`` (the task names) is now ``jaxrnn.train.tasks.digits.KINDS``.
"""

from __future__ import annotations

import importlib
import warnings

_NEW = "jaxrnn.train.tasks.digits"
# Old name -> its name in jaxrnn.train.tasks.digits.
_MOVED = {name: name for name in ("PAD", "BOS", "EOS", "FIRST_DIGIT", "VOCAB_SIZE", "Seq2SeqBatch", "digit_task",
                                  "sequence_accuracy", "token_accuracy")}
_MOVED["TASKS"] = "KINDS"


def __getattr__(name: str):
  """The moved names, imported from :mod:`jaxrnn.train.tasks.digits` (the ``[train]`` extra) when first used."""
  if name not in _MOVED:
    raise AttributeError(f"module 'jaxrnn.attention.tasks' has no attribute {name!r}")
  warnings.warn(f"jaxrnn.attention.tasks.{name} is deprecated and will be removed in the next release; use "
                f"{_NEW}.{_MOVED[name]}", DeprecationWarning, stacklevel=2)
  return getattr(importlib.import_module(_NEW), _MOVED[name])
