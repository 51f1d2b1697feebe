"""Training recurrent models from configs: tasks, model, optax loop, orbax checkpoints (``jaxrnn train``).

Needs the ``[train]`` extra (``pip install 'jaxrnn[train]'``: optax, orbax-checkpoint, tqdm, matplotlib); not
imported by ``import jaxrnn``. orbax, tqdm and matplotlib are imported where they are used (a checkpoint, a
progress bar, a plot), optax when this package is. The dataset tasks need the ``[data]`` extra (imported when
such a task is built).

Modules: :mod:`~jaxrnn.train.config` (typed configs), :mod:`~jaxrnn.train.tasks` (the task registry, one module
per task), :mod:`~jaxrnn.train.cells` (the cell and attention registries), :mod:`~jaxrnn.train.model`,
:mod:`~jaxrnn.train.step` (a :class:`Run`: the jitted train, eval and sample functions), :mod:`~jaxrnn.train.loop`
(the driver), :mod:`~jaxrnn.train.rundir`, :mod:`~jaxrnn.train.checkpoint`, :mod:`~jaxrnn.train.report`,
:mod:`~jaxrnn.train.sampling`, :mod:`~jaxrnn.train.distributed`.
"""

from jaxrnn.train.config import Config, ConfigError, load
from jaxrnn.train.loop import Result, evaluate_run, restore, train
from jaxrnn.train.sampling import sample_text
from jaxrnn.train.step import Run, TrainState, build

__all__ = ["Config", "ConfigError", "load", "Result", "Run", "TrainState", "build", "evaluate_run", "restore",
           "sample_text", "train"]
