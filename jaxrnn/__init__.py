"""jaxrnn: functional recurrent cells for JAX.

A cell is a :class:`Cell`, an immutable value of pure functions ``init``, ``initial_carry`` and ``step``; params
and carries are NamedTuples. :func:`unroll` runs a cell over a sequence with ``jax.lax.scan``.
"""

from jaxrnn import initializers
from jaxrnn.cells.gru import GRUCarry, GRUParams, gru
from jaxrnn.cells.lstm import LSTMCarry, LSTMParams, lstm
# --- Deep cells (issue 3, part C): depth-gated LSTM, Grid LSTM ---
from jaxrnn.cells.depth_gated_lstm import DepthGatedLSTMLayerParams, depth_gated_lstm
from jaxrnn.cells.grid_lstm import (GridBlock, GridLSTM1D, GridLSTM1DParams, GridLSTMBlockParams, GridLSTMCarry,
                                    GridLSTMParams, GridLSTMTransformParams, grid_block, grid_lstm, grid_lstm_1d,
                                    grid_lstm_block)
# --- end deep cells ---
# --- LSTM family (peepholes, Greff et al. variants, coupled gates, layer norm, projection) ---
from jaxrnn.cells.layer_norm_lstm import LayerNormLSTMParams, layer_norm_lstm
from jaxrnn.cells.lstmp import LSTMPCarry, LSTMPParams, lstmp
from jaxrnn.cells.peephole_lstm import (LSTM_VARIANTS, FGRCarry, LSTMVariant, PeepholeLSTMParams, coupled_lstm,
                                        lstm_variant, peephole_lstm)
# --- end LSTM family ---
from jaxrnn.cells.simple_rnn import SimpleRNNCarry, SimpleRNNParams, irnn, simple_rnn
# --- cells-other: MGU, IndRNN, Clockwork RNN, ConvLSTM (issue 3, items 5, 6, 9) ---
from jaxrnn.cells.clockwork import ClockworkCarry, ClockworkParams, clockwork_rnn
from jaxrnn.cells.conv_lstm import ConvLSTMCarry, ConvLSTMParams, conv_lstm
from jaxrnn.cells.indrnn import IndRNNCarry, IndRNNParams, indrnn, indrnn_constrain
from jaxrnn.cells.mgu import MGUCarry, MGUParams, mgu
# --- end cells-other ---
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
from jaxrnn.types import (Cell, CellConfig, InitFn, InitialCarryFn, InputTransformFn, RunOptions, SequenceFn,
                          SequencePath, StepFn)
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
# --- Combinators (issue 4): cells -> cell; truncated BPTT. ---
from jaxrnn import combinators
from jaxrnn.combinators import (BidirectionalCarry, BidirectionalParams, DenseParams, DropoutCarry,
                                LearnedInitParams, ProjectedParams, bidirectional, dropout, learned_initial_carry,
                                reset_on, residual, stack, variational_dropout, with_input_transform,
                                with_projection, with_reset_flags, zoneout)
from jaxrnn.tbptt import train_on_stream, truncated_unroll
# --- end combinators ---
# --- PyTorch interop (issue 10): a subpackage; it imports torch only inside its functions. ---
from jaxrnn import interop
# --- end PyTorch interop ---

__version__ = "0.1.0"

__all__ = [
    # The contract.
    "Cell",
    "CellConfig",
    "RunOptions",
    "SequencePath",
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
    # Deep cells (issue 3, part C).
    "depth_gated_lstm",
    "DepthGatedLSTMLayerParams",
    "grid_lstm",
    "grid_lstm_1d",
    "grid_lstm_block",
    "grid_block",
    "GridBlock",
    "GridLSTMParams",
    "GridLSTMBlockParams",
    "GridLSTMTransformParams",
    "GridLSTMCarry",
    "GridLSTM1D",
    "GridLSTM1DParams",
    # LSTM family.
    "peephole_lstm",
    "coupled_lstm",
    "lstm_variant",
    "LSTMVariant",
    "LSTM_VARIANTS",
    "PeepholeLSTMParams",
    "FGRCarry",
    "layer_norm_lstm",
    "LayerNormLSTMParams",
    "lstmp",
    "LSTMPParams",
    "LSTMPCarry",
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
    # --- PyTorch interop (issue 10). ---
    "interop",
]
