"""Training recurrent models from configs: tasks, model, optax loop, orbax checkpoints (``jaxrnn train``).

Needs the ``[train]`` extra (``pip install 'jaxrnn[train]'``: optax, orbax-checkpoint, tqdm, matplotlib); not
imported by ``import jaxrnn``. orbax, tqdm and matplotlib are imported where they are used (a checkpoint, a
progress bar, a plot), optax when this package is.
"""

from jaxrnn.train.config import Config, ConfigError, load
from jaxrnn.train.loop import Result, Run, TrainState, build, evaluate_run, restore, sample_text, train

__all__ = ["Config", "ConfigError", "load", "Result", "Run", "TrainState", "build", "evaluate_run", "restore",
           "sample_text", "train"]
