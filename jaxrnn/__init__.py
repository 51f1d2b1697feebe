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

# --- Attention (issue 8) ---
from jaxrnn.attention import tasks as attention_tasks
from jaxrnn.attention.mechanisms import (AdditiveAttentionParams, AttentionMechanism, DotAttentionParams,
                                         LuongAttentionParams, additive_attention, attend, dot_attention,
                                         last_position_attention, luong_attention, masked_softmax)
from jaxrnn.attention.seq2seq import Encoder, Seq2Seq, Seq2SeqParams, rnn_encoder, seq2seq
from jaxrnn.attention.wrapper import (AttentionCarry, AttentionWrapperParams, attention_wrapper, bind_memory,
                                      doubly_stochastic_penalty)
# --- end Attention ---

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
    # Attention (issue 8).
    "AttentionMechanism",
    "AdditiveAttentionParams",
    "LuongAttentionParams",
    "DotAttentionParams",
    "additive_attention",
    "luong_attention",
    "dot_attention",
    "last_position_attention",
    "masked_softmax",
    "attend",
    "attention_wrapper",
    "AttentionWrapperParams",
    "AttentionCarry",
    "bind_memory",
    "doubly_stochastic_penalty",
    "Encoder",
    "rnn_encoder",
    "seq2seq",
    "Seq2Seq",
    "Seq2SeqParams",
    "attention_tasks",
    # Modules.
    "initializers",
]
