"""Combinators: functions from cells to a cell (the same contract), so they nest freely.

One combinator a file: ``stack`` (deep RNNs), ``bidirectional``, ``residual``, ``with_projection`` and
``with_input_transform`` (dense layers around a cell), ``dropout``/``variational_dropout``/``zoneout``,
``reset_on`` (per-step resets for RL) and ``learned_initial_carry``.
"""

from jaxrnn.combinators.bidirectional import BidirectionalCarry, BidirectionalParams, bidirectional
from jaxrnn.combinators.dropout import DropoutCarry, dropout, variational_dropout, zoneout
from jaxrnn.combinators.learned_init import LearnedInitParams, learned_initial_carry
from jaxrnn.combinators.projection import DenseParams, ProjectedParams, with_input_transform, with_projection
from jaxrnn.combinators.reset import reset_on, with_reset_flags
from jaxrnn.combinators.residual import residual
from jaxrnn.combinators.stack import stack
