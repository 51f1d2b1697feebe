"""Attention: mechanisms over a memory, an attention wrapper cell, a seq2seq encoder-decoder, a synthetic task.

Modules: :mod:`~jaxrnn.attention.mechanisms` (additive, Luong, dot scores; :func:`~jaxrnn.attend`),
:mod:`~jaxrnn.attention.wrapper` (:func:`jaxrnn.attention_wrapper`, a cell), :mod:`~jaxrnn.attention.seq2seq`
(:func:`jaxrnn.seq2seq`; its :class:`~jaxrnn.attention.seq2seq.Encoder` type and
:func:`~jaxrnn.attention.seq2seq.rnn_encoder`) and :mod:`~jaxrnn.attention.tasks` (digit reversal and sorting
data, generated on the fly). The models' names are re-exported at the top level (``jaxrnn.attention_wrapper``).
"""

from jaxrnn.attention import mechanisms, seq2seq, tasks, wrapper

__all__ = ["mechanisms", "seq2seq", "tasks", "wrapper"]
