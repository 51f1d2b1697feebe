"""Training recurrent models from configs: tasks, model, optax loop, orbax checkpoints (``jaxrnn train``).

Not imported by ``import jaxrnn``; orbax, tqdm and matplotlib are imported lazily where they are used.
"""

from jaxrnn.train.config import Config, ConfigError, load
from jaxrnn.train.loop import Result, Run, TrainState, build, evaluate_run, restore, sample_text, train

__all__ = ["Config", "ConfigError", "load", "Result", "Run", "TrainState", "build", "evaluate_run", "restore",
           "sample_text", "train"]
