"""jaxrnn: functional recurrent cells for JAX.

A cell is a :class:`Cell`, an immutable value of pure functions ``init``, ``initial_carry`` and ``step``; params
and carries are NamedTuples. :func:`unroll` runs a cell over a sequence with ``jax.lax.scan``.
"""

from jaxrnn import initializers
from jaxrnn.cells.gru import GRUCarry, GRUParams, gru
from jaxrnn.cells.lstm import LSTMCarry, LSTMParams, lstm
from jaxrnn.cells.simple_rnn import SimpleRNNCarry, SimpleRNNParams, irnn, simple_rnn
# --- cells-other: MGU, IndRNN, Clockwork RNN, ConvLSTM (issue 3, items 5, 6, 9) ---
from jaxrnn.cells.clockwork import ClockworkCarry, ClockworkParams, clockwork_rnn
from jaxrnn.cells.conv_lstm import ConvLSTMCarry, ConvLSTMParams, conv_lstm
from jaxrnn.cells.indrnn import IndRNNCarry, IndRNNParams, indrnn, indrnn_constrain
from jaxrnn.cells.mgu import MGUCarry, MGUParams, mgu
# --- end cells-other ---
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
    # cells-other: MGU, IndRNN, Clockwork RNN, ConvLSTM.
    "mgu",
    "MGUParams",
    "MGUCarry",
    "indrnn",
    "indrnn_constrain",
    "IndRNNParams",
    "IndRNNCarry",
    "clockwork_rnn",
    "ClockworkParams",
    "ClockworkCarry",
    "conv_lstm",
    "ConvLSTMParams",
    "ConvLSTMCarry",
    # Modules.
    "initializers",
]
