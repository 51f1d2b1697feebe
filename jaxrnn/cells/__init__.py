"""Recurrent cells: one factory per file, each returning a :class:`jaxrnn.Cell`.

Common arguments
----------------
The cell factories share these keyword arguments: same names, same defaults and the meaning given here. Each
factory's ``Args:`` names the parameters its initialisers fill and says where it departs from this.

  kernel_init: the initialiser of the input kernels, ``init(key, shape, dtype) -> Array`` (the
    ``jax.nn.initializers`` signature; :mod:`jaxrnn.initializers` has the usual ones). Default
    ``lecun_normal()``. A fused kernel of gate blocks (``[F, nH]``) is drawn block by block: each gate's
    ``[F, H]`` block is its own draw. A ``param_dtype`` of fewer than 32 bits is drawn in float32 and cast.
  recurrent_kernel_init: the same for the recurrent kernels, each gate's ``[H, H]`` block its own draw, so that
    the default, ``orthogonal()``, makes every gate's recurrent matrix orthogonal (as Flax and Keras do).
  bias_init: the initialiser of the biases (default ``zeros``). A cell with a ``forget_bias`` adds it to the
    forget gate's block after this draw; with ``use_bias=False`` (where the factory has it) there is no bias
    and the field is ``None``.
  dtype: the compute dtype of the cell's matrix products (or convolutions); ``None`` (default) promotes the
    dtypes of the inputs and params, so float32 params can compute in bfloat16. Gate nonlinearities and the
    state update run in the carry's dtype; the new carry keeps the carry's dtype exactly and ``h`` has it too.
  param_dtype: the dtype of the parameters (default float32), and of the carry that
    ``cell.initial_carry(params)`` builds when it is given no ``dtype``.
  precision: the ``jax.lax.Precision`` of those matrix products or convolutions
    (default ``None``, JAX's).
"""
