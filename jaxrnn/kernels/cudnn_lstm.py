""":func:`jaxrnn.lstm` over a sequence through cuDNN (``jax.experimental.rnn.lstm``), on GPU.

As Keras 3 does for its JAX backend, the LSTM's sequence path can hand the whole loop to cuDNN's LSTM
(``kernel="cudnn"`` in :class:`jaxrnn.RunOptions`). cuDNN computes the same function as the JAX path:

* gates in PyTorch's (and jaxrnn's) order ``[i, f, g, o]``; its two biases are ``b`` and zeros; kernels are
  jaxrnn's transposed (:func:`pack`);
* variable lengths (cuDNN's padded I/O): the outputs after each sequence's end are zero and the final carry is
  the one at its last valid step, as jaxrnn's ``seq_lengths``. cuDNN is given lengths of at least 1; a sequence
  of length 0 gets its initial carry back and zero outputs here, as the contract says;
* ``stack`` and ``bidirectional`` layers run it layer by layer and direction by direction (they forward the run
  options to their inner cells; ``reverse`` reverses the valid part of each sequence first).

It fits a call (:func:`misfit`) when the backend is a GPU with cuDNN, the activations are ``tanh``/``sigmoid``,
inputs, carry, parameters and compute dtype are float32 (``jax.experimental.rnn`` has no other dtype,
jax#18867), ``precision`` is ``None``, ``"high"`` or ``"highest"`` (``None`` lets cuDNN use TF32, as XLA's
default does on GPU; ``"highest"`` does not), and ``unroll`` and ``hoist=False``, options of the XLA loop, are
not set. Reverse-mode derivatives come from cuDNN's backward pass; forward-mode AD (``jax.jvp``) and ``jax.vmap``
of the call are not available through ``jax.experimental.rnn``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp

from jaxrnn.types import RunOptions

LstmFn = Callable[..., Any]
"""``jax.experimental.rnn.lstm``'s signature: ``(x [B, T, F], h0 [1, B, H], c0, weights, seq_lengths, *,
input_size, hidden_size, num_layers, dropout, bidirectional, precision) -> (y [B, T, H], h_n, c_n)``."""


def _rnn():
  import jax.experimental.rnn as rnn  # experimental: imported where it is used
  return rnn


def available() -> Optional[str]:
  """``None`` if cuDNN's LSTM can run here, else why not."""
  backend = jax.default_backend()
  if backend != "gpu":
    return f"cuDNN runs on GPU; the backend is {backend!r}"
  try:
    rnn = _rnn()
  except ImportError as e:  # pragma: no cover - jax without the experimental module
    return f"jax.experimental.rnn cannot be imported ({e})"
  # jax.experimental.rnn has no public test for its kernels: gpu_rnn is its own (private) import of them.
  if rnn.gpu_rnn is None:  # pyright: ignore[reportPrivateImportUsage]  # pragma: no cover - no GPU RNN kernels
    return "this jaxlib has no cuDNN RNN kernels (jax._src.lib.gpu_rnn)"
  return None


def _precision_fits(precision: Any) -> bool:
  """``None``, or one of ``"high"``/``"highest"`` (as a ``jax.lax.Precision``, a name, or a pair of one): cuDNN
  takes one precision per call, TF32 allowed or not."""
  if precision is None:
    return True
  try:
    kinds = {jax.lax.Precision(p) for p in (precision if isinstance(precision, (tuple, list)) else (precision,))}
  except (ValueError, TypeError):
    return False
  return len(kinds) == 1 and kinds <= {jax.lax.Precision.HIGH, jax.lax.Precision.HIGHEST}


def misfit(params: Any, carry: Any, xs: jax.Array, options: RunOptions, *, standard_activations: bool,
           dtype: Any, precision: Any) -> Optional[str]:
  """``None`` if cuDNN's LSTM computes this call of the LSTM's sequence path, else the reason it does not.

  Args:
    params, carry, xs: the path's arguments (``LSTMParams``, ``LSTMCarry``, ``[T, *B, F]``).
    options: the run's :class:`jaxrnn.RunOptions`.
    standard_activations: the cell's activations are ``tanh`` and ``sigmoid`` (cuDNN's only ones).
    dtype, precision: the cell's compute dtype and matmul precision.
  """
  why = available()
  if why is not None:
    return why
  if not standard_activations:
    return "cuDNN's LSTM has tanh and sigmoid only; this cell has other activations"
  arrays = {"xs": xs, "carry.h": carry.h, "carry.c": carry.c, "params.w_i": params.w_i, "params.w_h": params.w_h,
            "params.b": params.b}
  wrong = {k: str(v.dtype) for k, v in arrays.items() if v is not None and v.dtype != jnp.float32}
  if wrong or (dtype is not None and jnp.dtype(dtype) != jnp.float32):
    return (f"jax.experimental.rnn's LSTM is float32 only (jax#18867); got {wrong or ''}"
            f"{'' if dtype is None else f' dtype={jnp.dtype(dtype)}'}")
  if not _precision_fits(precision):
    return f"cuDNN takes precision None, 'high' or 'highest', got {precision!r}"
  if "unroll" in options.set_fields() or options.hoist is False:  # unroll=True included (True == 1 in Python)
    return (f"unroll={options.unroll!r} and hoist={options.hoist!r} are options of the XLA loop (cuDNN takes "
            f"unroll None or 1 and hoist None or True)")
  if xs.shape[0] == 0 or math.prod(xs.shape[1:-1]) == 0:
    return f"cuDNN needs at least one step and one sequence, got xs of shape {xs.shape}"
  return None


def pack(params: Any) -> jax.Array:
  """cuDNN's flat weights of one unidirectional layer from ``LSTMParams(w_i [F, 4H], w_h [H, 4H], b [4H])``:
  ``(W_ih [4H, F], W_hh [4H, H], b_ih [4H], b_hh [4H])`` raveled, with ``b_ih = b`` (zeros without a bias) and
  ``b_hh = 0``. Gate order ``[i, f, g, o]`` in both."""
  width = params.w_h.shape[1]
  b = jnp.zeros((width,), params.w_h.dtype) if params.b is None else params.b
  return jnp.concatenate([params.w_i.T.reshape(-1), params.w_h.T.reshape(-1), b, jnp.zeros_like(b)])


def reference(x: jax.Array, h_0: jax.Array, c_0: jax.Array, weights: jax.Array, seq_lengths: jax.Array, *,
              input_size: int, hidden_size: int, num_layers: int, dropout: float, bidirectional: bool,
              precision: Any = None) -> Tuple[jax.Array, jax.Array, jax.Array]:
  """``jax.experimental.rnn.lstm``'s own pure-JAX reference (``lstm_ref``) with its signature: what the CPU tests
  run in cuDNN's place, to check :func:`run`'s layout, lengths and carries (not cuDNN itself)."""
  del precision
  rnn = _rnn()
  w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(weights, input_size, hidden_size, num_layers, bidirectional)
  return rnn.lstm_ref(x, h_0, c_0, w_ih, w_hh, b_ih, b_hh, seq_lengths, input_size, hidden_size, num_layers,
                      dropout, bidirectional)


def run(params: Any, carry: Any, xs: jax.Array, mask: Optional[jax.Array], precision: Any,
        lstm_fn: Optional[LstmFn] = None) -> Tuple[Any, jax.Array]:
  """The LSTM's sequence path through cuDNN: ``(carry, hs)`` as :class:`jaxrnn.types.SequenceFn` returns them.

  Args:
    params: ``LSTMParams``; carry: ``LSTMCarry(h, c)``, leaves ``[*B, H]``; xs: ``[T, *B, F]``.
    mask: ``None`` or the prefix mask ``bool[T, *B]``.
    precision: the cell's ``precision`` (cuDNN's TF32 switch).
    lstm_fn: ``jax.experimental.rnn.lstm`` (default) or :func:`reference`.

  The caller checks that the call fits (:func:`misfit`).
  """
  lstm_fn = _rnn().lstm if lstm_fn is None else lstm_fn
  num_steps, batch, features = xs.shape[0], xs.shape[1:-1], xs.shape[-1]
  hidden = carry.h.shape[-1]
  n = math.prod(batch)
  x = jnp.swapaxes(xs.reshape((num_steps, n, features)), 0, 1)  # [n, T, F]: cuDNN's batch-major layout
  h0 = carry.h.reshape((1, n, hidden))
  c0 = carry.c.reshape((1, n, hidden))
  if mask is None:
    lengths = jnp.full((n,), num_steps, jnp.int32)
  else:
    lengths = jnp.sum(mask.reshape((num_steps, n)), axis=0, dtype=jnp.int32)
  out = lstm_fn(x, h0, c0, pack(params), jnp.maximum(lengths, 1).astype(jnp.int32), input_size=features,
                hidden_size=hidden, num_layers=1, dropout=0.0, bidirectional=False, precision=precision)
  y, h_n, c_n = out  # pyright: ignore[reportGeneralTypeIssues]  # jax's lstm is a custom_vjp via partial: type lost
  hs = jnp.swapaxes(y, 0, 1)  # [T, n, H]
  h, c = h_n[0], c_n[0]
  if mask is not None:  # zero outputs after each end (length 0 too), the initial carry for length 0
    hs = jnp.where(mask.reshape((num_steps, n, 1)), hs, jnp.zeros_like(hs))
    empty = (lengths == 0)[:, None]
    h = jnp.where(empty, h0[0], h)
    c = jnp.where(empty, c0[0], c)
  final = carry._replace(h=h.reshape(batch + (hidden,)), c=c.reshape(batch + (hidden,)))
  return final, hs.reshape((num_steps,) + batch + (hidden,))
