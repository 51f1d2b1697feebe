"""Pieces shared by the LSTM family: its carry, diagonal (peephole/gain) products and layer normalisation."""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp


class LSTMCarry(NamedTuple):
  """Carry of :func:`jaxrnn.lstm` and its relatives: named fields, so nobody guesses ``(c, h)`` vs ``(h, c)``."""

  h: jax.Array  # [*B, H] hidden state, also the output
  c: jax.Array  # [*B, H] cell state (colah's "conveyor belt")


def gates(z: jax.Array, c_prev: jax.Array, act: Callable, gate_act: Callable) -> Tuple[jax.Array, jax.Array]:
  r"""``(c_t, o_t)``: the LSTM's cell update and output gate from the pre-activations ``z = [i, f, g, o]``.

  :math:`c_t = \sigma(f) \odot c_{t-1} + \sigma(i) \odot \phi(g)`, :math:`o_t = \sigma(o)` (``gate_act`` is
  :math:`\sigma`, ``act`` is :math:`\phi`); ``z: [*B, 4H]`` and ``c_prev: [*B, H]`` in the carry's dtype.
  """
  i, f, g, o = jnp.split(z, 4, axis=-1)
  return gate_act(f) * c_prev + gate_act(i) * act(g), gate_act(o)


def diag(w: jax.Array, x: jax.Array) -> jax.Array:
  """``w ⊙ x`` for ``w: [N]`` and ``x: [..., N]``, in ``x``'s dtype, without rank promotion."""
  return x * w.astype(x.dtype).reshape((1,) * (x.ndim - w.ndim) + w.shape)


def layer_norm(x: jax.Array, gain: jax.Array, bias: Optional[jax.Array], eps: float, groups: int = 1) -> jax.Array:
  """Layer normalisation of ``x: [..., N]`` over each of ``groups`` equal slices of its last axis.

  Statistics run in the promoted dtype of ``x`` and ``gain`` (float32 params keep bfloat16 activations stable);
  the result has that dtype. ``gain``/``bias``: ``[N]``.
  """
  dt = jnp.promote_types(x.dtype, gain.dtype)
  shape = x.shape
  y = x.astype(dt).reshape(shape[:-1] + (groups, shape[-1] // groups))
  mean = jnp.mean(y, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(y - mean), axis=-1, keepdims=True)
  y = ((y - mean) * jax.lax.rsqrt(var + jnp.asarray(eps, dt))).reshape(shape)
  y = diag(gain, y)
  if bias is not None:
    y = y + bias.astype(dt).reshape((1,) * (y.ndim - 1) + bias.shape)
  return y
