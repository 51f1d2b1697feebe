"""Initialisers used by the cells, in the ``jax.nn.initializers`` signature ``init(key, shape, dtype)``."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.nn.initializers import glorot_uniform, lecun_normal, normal, orthogonal, zeros

__all__ = ["identity", "glorot_uniform", "lecun_normal", "normal", "orthogonal", "zeros"]


def identity(scale: float = 1.0) -> Callable[..., jax.Array]:
  """The scaled identity for a square recurrent kernel (Le, Jaitly & Hinton 2015, the IRNN).

  >>> import jax, jax.numpy as jnp
  >>> identity(0.5)(jax.random.key(0), (2, 2), jnp.float32)
  Array([[0.5, 0. ],
         [0. , 0.5]], dtype=float32)
  """

  def init(key, shape, dtype=jnp.float32):
    del key
    if len(shape) != 2 or shape[0] != shape[1]:
      raise ValueError(f"identity initialiser needs a square 2-D shape, got {tuple(shape)}")
    return scale * jnp.eye(shape[0], dtype=dtype)

  return init
