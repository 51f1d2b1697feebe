"""The registries a training config names: recurrent cells (``model.cell``) and attention mechanisms
(``model.attention``), each a small dict from a name to a factory. A new cell is one more entry of :data:`CELLS`
(its name then becomes a valid ``model.cell``, and ``jaxrnn list`` prints it).

Light to import (only ``jaxrnn``): :mod:`jaxrnn.train.config` derives its choices from these dicts.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import jaxrnn


def _greff(variant: str) -> Callable[..., jaxrnn.Cell]:
  def factory(hidden_size, **kwargs):
    return jaxrnn.peephole_lstm(hidden_size, variant=variant, **kwargs)
  return factory


def _lstmp(hidden_size, *, proj_size=None, **kwargs):
  return jaxrnn.lstmp(hidden_size, proj_size or max(1, hidden_size // 2), **kwargs)


def _clockwork(hidden_size, *, periods=None, num_modules=None, **kwargs):
  if periods is None and num_modules is None:  # as many modules (<= 4) as divide hidden_size
    num_modules = next(g for g in (4, 3, 2, 1) if hidden_size % g == 0)
  return jaxrnn.clockwork_rnn(hidden_size, periods=periods, num_modules=num_modules, **kwargs)


def _depth_gated(hidden_size, *, depth=2, **kwargs):
  return jaxrnn.depth_gated_lstm((hidden_size,) * depth, **kwargs)


# name -> factory(hidden_size, *, dtype, param_dtype, **options) -> Cell. Extend here to train a new cell.
# Every sequential vector cell of the library (conv_lstm and grid_lstm need image or grid inputs: not here).
CELLS: dict[str, Any] = {
    "simple_rnn": jaxrnn.simple_rnn,
    "lstm": jaxrnn.lstm,
    "gru": jaxrnn.gru,
    "irnn": jaxrnn.irnn,
    # LSTM family: peepholes (Gers & Schmidhuber 2000), the variants of Greff et al. 2015, coupled gates,
    # layer norm (Ba et al. 2016), projection (Sak et al. 2014; proj_size defaults to hidden_size // 2).
    "peephole_lstm": jaxrnn.peephole_lstm,
    **{f"lstm_{v.lower()}": _greff(v) for v in jaxrnn.LSTM_VARIANTS if v != "vanilla"},
    "coupled_lstm": jaxrnn.coupled_lstm,
    "layer_norm_lstm": jaxrnn.layer_norm_lstm,
    "lstmp": _lstmp,
    "depth_gated_lstm": _depth_gated,  # depth layers (default 2) of hidden_size in one cell
    # Other gated and ungated cells.
    "mgu": jaxrnn.mgu,
    "indrnn": jaxrnn.indrnn,
    "clockwork_rnn": _clockwork,  # num_modules defaults to the largest of 4, 3, 2, 1 dividing hidden_size
    # Parallel-in-time cells (run with their whole-sequence paths by jaxrnn.unroll).
    "min_gru": jaxrnn.min_gru,
    "min_lstm": jaxrnn.min_lstm,
    "lru": jaxrnn.lru,
    "rg_lru": jaxrnn.rg_lru,
    "mlstm": jaxrnn.mlstm,
    "slstm": jaxrnn.slstm,
    # Diagonal recurrences made for the parallel-in-time solver (Danieli et al. 2025, ParaRNN); the trainer runs
    # them with unroll's default path (the scan of step: the config has no option for the solver).
    "para_gru": jaxrnn.para_gru,
    "para_lstm": jaxrnn.para_lstm,
}

# model.attention of the seq2seq tasks: name -> factory(size) -> AttentionMechanism (size = model.attention_size).
ATTENTION = {
    "additive": jaxrnn.additive_attention,  # Bahdanau et al. 2015
    "location": lambda size: jaxrnn.additive_attention(size, location_kernel_size=5),  # Chorowski et al. 2015
    "luong": lambda size: jaxrnn.luong_attention(),  # Luong et al. 2015, "general"
    "scaled_luong": lambda size: jaxrnn.luong_attention(scale=True),
    "dot": lambda size: jaxrnn.dot_attention(),
    "none": lambda size: jaxrnn.last_position_attention(),  # the decoder sees the encoder's final output only
}


def make_cell(name: str, hidden_size: int, *, dtype: Any = None, options: Optional[dict] = None) -> jaxrnn.Cell:
  """Builds the cell ``name`` from :data:`CELLS`; bad names or options raise ``ValueError`` naming the choices."""
  if name not in CELLS:
    raise ValueError(f"model.cell = {name!r} is not a known cell; choices: {', '.join(CELLS)}")
  try:
    return CELLS[name](hidden_size, dtype=dtype, **(options or {}))
  except TypeError as e:
    raise ValueError(f"model.cell_options {options!r} do not fit cell {name!r}: {e}") from None


