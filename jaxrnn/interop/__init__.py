"""Interoperability with other frameworks' recurrent layers.

``jaxrnn.interop.torch``: exact import and export of PyTorch's ``nn.RNN``/``nn.LSTM``/``nn.GRU`` and their
``*Cell`` classes (:func:`from_torch`, :func:`to_torch`, carries in PyTorch's layout, a PyTorch-style forward).
Importing this package never imports torch; the functions that need it import it when called.
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
