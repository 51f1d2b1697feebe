"""The keyword options that the cell factories share: initialisers, dtypes and precision, declared once.

A factory takes them as ``**options: Unpack[RecurrentOptions]`` (or :class:`DenseOptions`, :class:`KernelOptions`,
:class:`DtypeOptions`), so ``jaxrnn.lstm(64, kernel_init=..., param_dtype=jnp.bfloat16)`` is written as before,
pyright checks the names and types at the call, and the defaults and their meaning live here only.
:func:`resolve` fills the defaults, checks the dtypes and refuses an option the factory does not take
(``TypeError``, as Python does for an unknown keyword).

  kernel_init: the initialiser of the input kernels, ``init(key, shape, dtype) -> Array`` (the
    ``jax.nn.initializers`` signature; :mod:`jaxrnn.initializers` has the usual ones). Default
    ``lecun_normal()`` (``glorot_uniform()`` for the attention layers). A fused kernel of gate blocks
    (``[F, nH]``) is drawn block by block: each gate's ``[F, H]`` block is its own draw. A ``param_dtype`` of
    fewer than 32 bits is drawn in float32 and cast.
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

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Optional, TypedDict

import jax.numpy as jnp

from jaxrnn import _checks, initializers


class DtypeOptions(TypedDict, total=False):
  """``dtype``, ``param_dtype`` and ``precision`` (see :mod:`jaxrnn.cells.options`): every factory takes them."""

  dtype: Optional[Any]
  param_dtype: Any
  precision: Any


class KernelOptions(DtypeOptions, total=False):
  """:class:`DtypeOptions` and ``kernel_init``: a layer without biases to draw (the attention mechanisms and
  wrapper, whose default ``kernel_init`` is ``glorot_uniform()``)."""

  kernel_init: Callable


class DenseOptions(KernelOptions, total=False):
  """:class:`KernelOptions` and ``bias_init``: a cell whose gates read ``x_t`` only."""

  bias_init: Callable


class RecurrentOptions(DenseOptions, total=False):
  """:class:`DenseOptions` and ``recurrent_kernel_init``: a cell with recurrent kernels."""

  recurrent_kernel_init: Callable


class Options(NamedTuple):
  """The resolved options (:func:`resolve`)."""

  kernel_init: Callable  # an initialiser the factory does not take holds its default, unused
  recurrent_kernel_init: Callable
  bias_init: Callable
  dtype: Optional[Any]  # checked: a floating dtype or None
  param_dtype: Any  # checked: a floating dtype
  precision: Any


DEFAULTS = Options(kernel_init=initializers.lecun_normal(), recurrent_kernel_init=initializers.orthogonal(),
                   bias_init=initializers.zeros, dtype=None, param_dtype=jnp.float32, precision=None)


def resolve(factory: str, given: Mapping[str, Any], kind: Any = RecurrentOptions, **defaults: Any) -> Options:
  """The options a factory was given, its defaults filled in, the dtypes checked.

  Args:
    factory: the factory's name, for the error message.
    given: the factory's ``**options``.
    kind: the options the factory takes (:class:`DtypeOptions`, :class:`KernelOptions`, :class:`DenseOptions` or
      :class:`RecurrentOptions`).
    **defaults: where the factory's default departs from :data:`DEFAULTS` (e.g. ``conv_lstm``'s
      ``recurrent_kernel_init``).

  Raises:
    TypeError: an option outside ``kind`` (named, with the ones the factory takes), or a dtype that is not a
      floating dtype.
  """
  allowed = kind.__required_keys__ | kind.__optional_keys__  # a TypedDict's declared keys
  unknown = sorted(set(given) - allowed)
  if unknown:
    raise TypeError(f"{factory}() got an unexpected keyword argument {unknown[0]!r}; its options are "
                    f"{', '.join(sorted(allowed))} (jaxrnn.cells.options.{kind.__name__})")
  values = {**DEFAULTS._asdict(), **defaults, **given}
  values.update(dtype=_checks.dtype("dtype", values["dtype"]),
                param_dtype=_checks.dtype("param_dtype", values["param_dtype"]))
  return Options(**values)
