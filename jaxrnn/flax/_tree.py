"""Params NamedTuples <-> nested dicts, the form Flax stores, optimises and serialises cleanly."""

from __future__ import annotations

from typing import Any

import jax

import jaxrnn


def _is_namedtuple(x: Any) -> bool:
  return isinstance(x, tuple) and hasattr(x, "_fields")


def to_dict(tree: Any) -> Any:
  """A params pytree as nested dicts: NamedTuple fields by name, tuple/list entries by ``"0"``, ``"1"``...

  ``None`` fields (e.g. ``b`` of a cell with ``use_bias=False``) are left out; arrays are kept as they are.
  """
  if _is_namedtuple(tree):
    return {k: to_dict(v) for k, v in zip(tree._fields, tree) if v is not None}
  if isinstance(tree, (tuple, list)):
    return {str(i): to_dict(v) for i, v in enumerate(tree) if v is not None}
  if isinstance(tree, dict):
    return {k: to_dict(v) for k, v in tree.items() if v is not None}
  return tree


def from_dict(d: Any, template: Any) -> Any:
  """Inverse of :func:`to_dict`: rebuilds the structure of ``template`` (e.g. from ``jax.eval_shape``)."""
  if template is None:
    return None
  if _is_namedtuple(template):
    return type(template)(*[from_dict(d[k], v) if v is not None else None
                            for k, v in zip(template._fields, template)])
  if isinstance(template, (tuple, list)):
    return type(template)(from_dict(d[str(i)], v) if v is not None else None for i, v in enumerate(template))
  if isinstance(template, dict):
    return {k: from_dict(d[k], v) if v is not None else None for k, v in template.items()}
  return d


def zeros_like_spec(template: Any) -> Any:
  """Zeros with the shapes and dtypes of a ``jax.eval_shape`` result."""
  return jax.tree.map(lambda s: jax.numpy.zeros(s.shape, s.dtype), template)


def input_size(shape: Any, input_ndim: int) -> Any:
  """The ``input_size`` that ``cell.init`` takes, from an input (or input shape) with ``input_ndim`` feature axes."""
  feat = tuple(shape[len(shape) - input_ndim:])
  if len(feat) != input_ndim:
    raise ValueError(f"input must have at least {input_ndim} feature axis(es), got shape {tuple(shape)}")
  return feat[0] if input_ndim == 1 else feat


def param_template(cell: Any, size: Any) -> Any:
  """``jax.eval_shape`` of ``cell.init``: the params' structure, shapes and dtypes (no random numbers drawn)."""
  return jax.eval_shape(lambda: cell.init(jax.random.key(0), size))


def run_layer(cell: Any, params: Any, inputs: Any, *, initial_carry: Any, seq_lengths: Any, reverse: bool,
              time_major: bool, unroll: int, mode: str, return_carry: bool) -> Any:
  """The body of both adapters' ``RNN.__call__``: default carry for the inputs' batch shape, then ``unroll``."""
  nf = cell.input_ndim
  if initial_carry is None:
    if inputs.ndim < nf + 1:
      raise ValueError(f"inputs must have a time axis and {nf} feature axis(es), got shape {inputs.shape}")
    batch = inputs.shape[1:inputs.ndim - nf] if time_major else inputs.shape[:inputs.ndim - nf - 1]
    initial_carry = cell.initial_carry(params, tuple(batch))
  carry, hs = jaxrnn.unroll(cell, params, initial_carry, inputs, seq_lengths=seq_lengths, reverse=reverse,
                            time_major=time_major, unroll=unroll, mode=mode)
  return (carry, hs) if return_carry else hs


def run_bidirectional(forward_rnn: Any, backward_rnn: Any, merge_fn: Any, inputs: Any, *, initial_carry: Any,
                      seq_lengths: Any, return_carry: bool, time_major: bool) -> Any:
  """The body of both adapters' ``Bidirectional.__call__``: both layers over ``inputs``, outputs merged."""
  c_f, c_b = (None, None) if initial_carry is None else initial_carry
  carry_f, hs_f = forward_rnn(inputs, initial_carry=c_f, seq_lengths=seq_lengths, return_carry=True,
                              reverse=False, time_major=time_major)
  carry_b, hs_b = backward_rnn(inputs, initial_carry=c_b, seq_lengths=seq_lengths, return_carry=True,
                               reverse=True, time_major=time_major)
  hs = merge_fn(hs_f, hs_b)
  return ((carry_f, carry_b), hs) if return_carry else hs


def concatenate(a: jax.Array, b: jax.Array) -> jax.Array:
  """The default ``merge_fn`` of the bidirectional adapters: features side by side, ``[..., H_f + H_b]``."""
  return jax.numpy.concatenate([a, b], axis=-1)
