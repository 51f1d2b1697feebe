"""jaxrnn: functional recurrent cells for JAX.

A cell is a :class:`Cell`, an immutable value of pure functions ``init``, ``initial_carry`` and ``step``; params
and carries are NamedTuples. :func:`unroll` runs a cell over a sequence with ``jax.lax.scan``.
"""

from jaxrnn import initializers
from jaxrnn.cells.gru import GRUCarry, GRUParams, gru
from jaxrnn.cells.lstm import LSTMCarry, LSTMParams, lstm
from jaxrnn.cells.simple_rnn import SimpleRNNCarry, SimpleRNNParams, irnn, simple_rnn
# --- Parallel-in-time cells (issue 9) ---
from jaxrnn import parallel_scan
from jaxrnn.cells.min_gru import MinGRUCarry, MinGRUParams, min_gru
from jaxrnn.cells.min_lstm import MinLSTMCarry, MinLSTMParams, min_lstm
from jaxrnn.cells.lru import LRUCarry, LRUParams, lru
from jaxrnn.cells.rg_lru import RGLRUCarry, RGLRUParams, rg_lru
from jaxrnn.cells.mlstm import MLSTMCarry, MLSTMParams, mlstm
from jaxrnn.cells.slstm import SLSTMCarry, SLSTMParams, slstm
# --- end parallel-in-time cells ---
from jaxrnn.sequences import length_mask, reverse_valid
from jaxrnn.types import Cell, InitFn, InitialCarryFn, InputTransformFn, SequenceFn, StepFn
from jaxrnn.unroll import static_unroll, unroll

__version__ = "0.1.0"

__all__ = [
    # The contract.
    "Cell",
    "InitFn",
    "InitialCarryFn",
    "InputTransformFn",
    "SequenceFn",
    "StepFn",
    # The unroll engine.
    "unroll",
    "static_unroll",
    "length_mask",
    "reverse_valid",
    # Cells.
    "simple_rnn",
    "irnn",
    "SimpleRNNParams",
    "SimpleRNNCarry",
    "lstm",
    "LSTMParams",
    "LSTMCarry",
    "gru",
    "GRUParams",
    "GRUCarry",
    # Parallel-in-time cells (issue 9).
    "parallel_scan",
    "min_gru",
    "MinGRUParams",
    "MinGRUCarry",
    "min_lstm",
    "MinLSTMParams",
    "MinLSTMCarry",
    "lru",
    "LRUParams",
    "LRUCarry",
    "rg_lru",
    "RGLRUParams",
    "RGLRUCarry",
    "mlstm",
    "MLSTMParams",
    "MLSTMCarry",
    "slstm",
    "SLSTMParams",
    "SLSTMCarry",
    # Modules.
    "initializers",
]
