"""Pieces the ParaRNN cells share (Danieli et al. 2025): three dense input blocks and diagonal recurrent weights."""

from __future__ import annotations

from typing import Any, Callable, Tuple

import jax
import jax.numpy as jnp

from jaxrnn.cells import _dense
from jaxrnn.cells.options import Options


def parts(hidden_size: int, params_type: type[Any], carry_type: type[Any], options: Options, *,
          recurrent_init: Callable, **dense_kw: Any) -> _dense.DenseParts:
  """The :func:`jaxrnn.cells._dense.dense_parts` of a cell with params ``(w: [F, 3H], b: [3H], a: [3H])``.

  ``a``, the diagonals of the three recurrent matrices, is drawn by ``recurrent_init``; ``dense_kw``: the rest of
  ``dense_parts``'s arguments.
  """
  H = hidden_size

  def init_a(keys, input_size):
    del input_size
    return dict(a=recurrent_init(keys[0], (3 * H,), options.param_dtype))

  return _dense.dense_parts(H, 3, params_type, carry_type, options, recurrent=False, extra_keys=1, init_extra=init_a,
                            **dense_kw)


def gate_inputs(params: Any, u: jax.Array, h: jax.Array) -> Tuple[list, list]:
  """``([u_0, u_1, u_2], [a_0 ⊙ h, a_1 ⊙ h, a_2 ⊙ h])``: the blocks of ``u: [*B, 3H]`` and of the diagonal
  recurrence ``a ⊙ [h; h; h]``, in ``h``'s dtype (``h: [*B, H]``)."""
  cdt = h.dtype
  a = params.a.astype(cdt).reshape((1,) * (h.ndim - 1) + (u.shape[-1],))
  return jnp.split(u.astype(cdt), 3, axis=-1), [a_k * h for a_k in jnp.split(a, 3, axis=-1)]
