"""Attention: mechanisms over a memory, an attention wrapper cell, a seq2seq encoder-decoder.

Modules: :mod:`~jaxrnn.attention.mechanisms` (additive, Luong, dot scores; :func:`~jaxrnn.attend`),
:mod:`~jaxrnn.attention.wrapper` (:func:`jaxrnn.attention_wrapper`, a cell), :mod:`~jaxrnn.attention.seq2seq`
(:func:`jaxrnn.seq2seq`; its :class:`~jaxrnn.attention.seq2seq.Encoder` type and
:func:`~jaxrnn.attention.seq2seq.rnn_encoder`). The models' names are re-exported at the top level
(``jaxrnn.attention_wrapper``). The digit reversal and sorting data live with the trainer's task
(:mod:`jaxrnn.train.tasks.digits`); ``jaxrnn.attention.tasks`` is their deprecated old place.
"""

from jaxrnn.attention import mechanisms, seq2seq, wrapper
from jaxrnn.attention import tasks  # noqa: F401 (the deprecated old place of the digit data; not in __all__)

__all__ = ["mechanisms", "seq2seq", "wrapper"]
