"""jaxrnn: functional recurrent cells for JAX.

A cell is a :class:`Cell`, an immutable value of pure functions ``init``, ``initial_carry`` and ``step``; params
and carries are NamedTuples. :func:`unroll` runs a cell over a sequence with ``jax.lax.scan``.
"""

from jaxrnn import initializers
from jaxrnn.cells.gru import GRUCarry, GRUParams, gru
from jaxrnn.cells.lstm import LSTMCarry, LSTMParams, lstm
from jaxrnn.cells.simple_rnn import SimpleRNNCarry, SimpleRNNParams, irnn, simple_rnn
from jaxrnn.sequences import length_mask, reverse_valid
from jaxrnn.types import Cell, InitFn, InitialCarryFn, InputTransformFn, SequenceFn, StepFn
from jaxrnn.unroll import static_unroll, unroll

# --- Combinators (issue 4): cells -> cell; truncated BPTT. ---
from jaxrnn import combinators
from jaxrnn.combinators import (BidirectionalCarry, BidirectionalParams, DenseParams, DropoutCarry,
                                LearnedInitParams, ProjectedParams, bidirectional, dropout, learned_initial_carry,
                                reset_on, residual, stack, variational_dropout, with_input_transform,
                                with_projection, with_reset_flags, zoneout)
from jaxrnn.tbptt import train_on_stream, truncated_unroll
# --- end combinators ---

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
    # Modules.
    "initializers",
    # --- Combinators (issue 4). ---
    "combinators",
    "stack",
    "bidirectional",
    "BidirectionalParams",
    "BidirectionalCarry",
    "residual",
    "with_projection",
    "with_input_transform",
    "DenseParams",
    "ProjectedParams",
    "dropout",
    "variational_dropout",
    "zoneout",
    "DropoutCarry",
    "reset_on",
    "with_reset_flags",
    "learned_initial_carry",
    "LearnedInitParams",
    "truncated_unroll",
    "train_on_stream",
    # --- end combinators ---
]
