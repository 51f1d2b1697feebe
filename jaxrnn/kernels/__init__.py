"""Kernels beside the JAX path for cells' sequence paths, chosen with :attr:`jaxrnn.RunOptions.kernel`.

* :mod:`jaxrnn.kernels.cudnn_lstm`: :func:`jaxrnn.lstm` through cuDNN (``jax.experimental.rnn``), on GPU.
* :mod:`jaxrnn.kernels.pallas_linear_recurrence`: ``h_t = a_t * h_{t-1} + b_t`` as one Pallas kernel
  (``min_gru``, ``min_lstm``, ``lru``, ``rg_lru``).
* :mod:`jaxrnn.kernels.choice`: the value of the option, checked, and each backend's measured default.
"""
