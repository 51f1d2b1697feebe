"""jaxrnn: functional recurrent cells for JAX.

A cell is a :class:`Cell`, an immutable value of pure functions ``init``, ``initial_carry`` and ``step``; params
and carries are NamedTuples. :func:`unroll` runs a cell over a sequence with ``jax.lax.scan``.

The namespace, by concept: the cell contract and its types; the cells (each factory with its params and carry
NamedTuples); running sequences (:func:`unroll` and its options, truncated BPTT, sequence-length helpers);
combinators (cells -> cell); attention (mechanisms, the attention wrapper cell, a seq2seq model); parallel scans
(:mod:`jaxrnn.parallel_scan`). Building blocks that are not cells live in their modules
(:mod:`jaxrnn.cells.grid_lstm`, :mod:`jaxrnn.attention.seq2seq`); the digit-task data is the trainer's
(:mod:`jaxrnn.train.tasks.digits`).

``import jaxrnn`` needs only jax and numpy: Flax (:mod:`jaxrnn.flax`), the trainer (:mod:`jaxrnn.train`) and
PyTorch interop (:mod:`jaxrnn.interop.torch`) import their dependencies when they are used.
"""

import importlib as _importlib
import warnings as _warnings

# The cell contract.
from jaxrnn.types import (Cell, CellConfig, InitFn, InitialCarryFn, InputTransformFn, PathChoice, ResetSequenceFn,
                          SequenceFn, SequencePath, StepFn, carry_batch_shape)

# Cells: Elman, LSTM, GRU.
from jaxrnn.cells.simple_rnn import SimpleRNNCarry, SimpleRNNParams, irnn, simple_rnn
from jaxrnn.cells.lstm import LSTMCarry, LSTMParams, lstm
from jaxrnn.cells.gru import GRUCarry, GRUParams, gru
# Cells: the LSTM family (peepholes, Greff et al. variants, coupled gates, layer norm, projection).
from jaxrnn.cells.peephole_lstm import (LSTM_VARIANTS, FGRCarry, LSTMVariant, PeepholeLSTMParams, coupled_lstm,
                                        lstm_variant, peephole_lstm)
from jaxrnn.cells.layer_norm_lstm import LayerNormLSTMParams, layer_norm_lstm
from jaxrnn.cells.lstmp import LSTMPCarry, LSTMPParams, lstmp
# Cells: deep (depth-gated LSTM, Grid LSTM).
from jaxrnn.cells.depth_gated_lstm import DepthGatedLSTMLayerParams, depth_gated_lstm
from jaxrnn.cells.grid_lstm import (GridLSTMBlockParams, GridLSTMCarry, GridLSTMParams, GridLSTMTransformParams,
                                    grid_lstm)
# Cells: MGU, IndRNN, Clockwork RNN, ConvLSTM.
from jaxrnn.cells.mgu import MGUCarry, MGUParams, mgu
from jaxrnn.cells.indrnn import IndRNNCarry, IndRNNParams, indrnn, indrnn_constrain
from jaxrnn.cells.clockwork import ClockworkCarry, ClockworkParams, clockwork_rnn
from jaxrnn.cells.conv_lstm import ConvLSTMCarry, ConvLSTMParams, conv_lstm
# Cells: parallel-in-time (whole-sequence paths on associative scans or a quadratic form).
from jaxrnn.cells.min_gru import MinGRUCarry, MinGRUParams, min_gru
from jaxrnn.cells.min_lstm import MinLSTMCarry, MinLSTMParams, min_lstm
from jaxrnn.cells.lru import LRUCarry, LRUParams, lru
from jaxrnn.cells.rg_lru import RGLRUCarry, RGLRUParams, rg_lru
from jaxrnn.cells.mlstm import MLSTMCarry, MLSTMParams, mlstm
from jaxrnn.cells.slstm import SLSTMCarry, SLSTMParams, slstm
from jaxrnn.cells.para_gru import ParaGRUCarry, ParaGRUParams, para_gru
from jaxrnn.cells.para_lstm import ParaLSTMParams, para_lstm

# Running sequences.
from jaxrnn.types import ParallelNewton, RematBudget, RunOptions
from jaxrnn.unroll import newton_unroll, static_unroll, unroll
from jaxrnn.tbptt import train_on_stream, truncated_unroll
from jaxrnn.sequences import length_mask, reverse_valid

# Combinators: cells -> cell.
from jaxrnn import combinators
from jaxrnn.combinators import (BidirectionalCarry, BidirectionalParams, DenseParams, DropoutCarry,
                                LearnedInitParams, ProjectedParams, bidirectional, dropout, learned_initial_carry,
                                reset_on, residual, stack, variational_dropout, with_input_transform,
                                with_projection, with_reset_flags, zoneout)

# Attention.
from jaxrnn import attention
from jaxrnn.attention.mechanisms import (AdditiveAttentionParams, AttentionMechanism, DotAttentionParams,
                                         LuongAttentionParams, additive_attention, attend, dot_attention,
                                         last_position_attention, luong_attention, masked_softmax)
from jaxrnn.attention.wrapper import (AttentionCarry, AttentionWrapperParams, attention_wrapper, bind_memory,
                                      doubly_stochastic_penalty)
from jaxrnn.attention.seq2seq import Seq2Seq, Seq2SeqParams, seq2seq

# Parallel scans, initializers, interop, the native CPU path (modules).
from jaxrnn import initializers
from jaxrnn import interop
from jaxrnn import native
from jaxrnn import checkpointing
from jaxrnn import parallel_newton
from jaxrnn import path_choice
from jaxrnn import parallel_scan

# Deprecated top-level names (kept for one release): the modules they moved to.
from jaxrnn.attention import seq2seq as _seq2seq_lib
from jaxrnn.cells import grid_lstm as _grid_lstm_lib

__version__ = "0.1.0"

__all__ = [
    # The cell contract.
    "Cell",
    "CellConfig",
    "SequencePath",
    "PathChoice",
    "InitFn",
    "InitialCarryFn",
    "InputTransformFn",
    "SequenceFn",
    "ResetSequenceFn",
    "StepFn",
    "carry_batch_shape",
    # Cells: Elman, LSTM, GRU.
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
    # Cells: the LSTM family.
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
    # Cells: deep.
    "depth_gated_lstm",
    "DepthGatedLSTMLayerParams",
    "grid_lstm",
    "GridLSTMParams",
    "GridLSTMBlockParams",
    "GridLSTMTransformParams",
    "GridLSTMCarry",
    # Cells: MGU, IndRNN, Clockwork RNN, ConvLSTM.
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
    # Cells: parallel-in-time.
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
    "para_gru",
    "ParaGRUParams",
    "ParaGRUCarry",
    "para_lstm",
    "ParaLSTMParams",
    # Running sequences.
    "unroll",
    "static_unroll",
    "RunOptions",
    "native",
    "ParallelNewton",
    "RematBudget",
    "newton_unroll",
    "truncated_unroll",
    "train_on_stream",
    "length_mask",
    "reverse_valid",
    # Combinators.
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
    # Attention.
    "attention",
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
    "seq2seq",
    "Seq2Seq",
    "Seq2SeqParams",
    # Parallel scans, initializers, interop.
    "checkpointing",
    "parallel_newton",
    "path_choice",
    "parallel_scan",
    "initializers",
    "interop",
]

# Old top-level name -> (its value, where it lives now). Removed in the release after next.
_DEPRECATED: dict = {
    # A synthetic-data generator, not part of the model API: the trainer's digit task. ``None``: the module named
    # is imported when the name is used (it needs the [train] extra, which ``import jaxrnn`` does not).
    "attention_tasks": (None, "jaxrnn.train.tasks.digits"),
    # (init, apply) bundles that are not cells: seq2seq's encoder type.
    "Encoder": (_seq2seq_lib.Encoder, "jaxrnn.attention.seq2seq.Encoder"),
    "rnn_encoder": (_seq2seq_lib.rnn_encoder, "jaxrnn.attention.seq2seq.rnn_encoder"),
    # Grid LSTM building blocks that are not cells (a feed-forward 1-D net, an N-D block, one block transform).
    "grid_lstm_1d": (_grid_lstm_lib.grid_lstm_1d, "jaxrnn.cells.grid_lstm.grid_lstm_1d"),
    "GridLSTM1D": (_grid_lstm_lib.GridLSTM1D, "jaxrnn.cells.grid_lstm.GridLSTM1D"),
    "GridLSTM1DParams": (_grid_lstm_lib.GridLSTM1DParams, "jaxrnn.cells.grid_lstm.GridLSTM1DParams"),
    "grid_block": (_grid_lstm_lib.grid_block, "jaxrnn.cells.grid_lstm.grid_block"),
    "GridBlock": (_grid_lstm_lib.GridBlock, "jaxrnn.cells.grid_lstm.GridBlock"),
    "grid_lstm_block": (_grid_lstm_lib.grid_lstm_block, "jaxrnn.cells.grid_lstm.grid_lstm_block"),
}


def __getattr__(name: str):
  """The deprecated top-level names (:data:`_DEPRECATED`), with a ``DeprecationWarning`` naming the new one."""
  if name in _DEPRECATED:
    value, new = _DEPRECATED[name]
    value = _importlib.import_module(new) if value is None else value
    _warnings.warn(f"jaxrnn.{name} is deprecated and will be removed in the next release; use {new}",
                   DeprecationWarning, stacklevel=2)
    return value
  raise AttributeError(f"module 'jaxrnn' has no attribute {name!r}")
