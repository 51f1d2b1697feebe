"""Interoperability with other frameworks' recurrent layers.

``jaxrnn.interop.torch``: exact import and export of PyTorch's ``nn.RNN``/``nn.LSTM``/``nn.GRU`` and their
``*Cell`` classes (:func:`from_torch`, :func:`to_torch`, carries in PyTorch's layout, a PyTorch-style forward).
Importing this package never imports torch; the functions that need it import it when called.

``jaxrnn.interop.equinox`` (``pip install 'jaxrnn[equinox]'``): ``eqx.Module`` wrappers of any cell and exact
weights to and from ``eqx.nn.LSTMCell``/``GRUCell``. ``jaxrnn.interop.keras`` (``pip install 'jaxrnn[keras]'``):
exact weights to and from Keras 3's ``LSTM``, ``GRU``, ``SimpleRNN``, ``Bidirectional`` and stacks of them. Both are
imported on demand (``from jaxrnn.interop import equinox``); importing this package imports neither.
"""

from jaxrnn.interop.torch import (TorchSpec, carry_from_torch, carry_to_torch, from_torch, to_torch, torch_forward,
                                  torch_module, torch_spec)

__all__ = [
    "from_torch",
    "to_torch",
    "carry_to_torch",
    "carry_from_torch",
    "torch_forward",
    "torch_module",
    "torch_spec",
    "TorchSpec",
]
