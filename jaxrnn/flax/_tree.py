"""Params NamedTuples <-> nested dicts, the form Flax stores, optimises and serialises cleanly."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

import jaxrnn
from jaxrnn import sequences


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


def step_shape(inputs: Any, input_ndim: int, time_major: bool) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
  """``(batch_shape, step_input_shape)`` of ``inputs: [*B, T, *F]`` (or ``[T, *B, *F]``): ``*B`` and ``[*B, *F]``."""
  shape = tuple(inputs.shape)
  if len(shape) < input_ndim + 1:
    raise ValueError(f"inputs must have a time axis and {input_ndim} feature axis(es), got shape {shape}")
  time_axis = 0 if time_major else len(shape) - input_ndim - 1
  batch = shape[1:len(shape) - input_ndim] if time_major else shape[:time_axis]
  return batch, shape[:time_axis] + shape[time_axis + 1:]


def apply_carry_init(carry: Any, carry_init: Any, key: Any) -> Any:
  """Flax's ``carry_init``: every floating leaf of ``carry`` replaced by ``carry_init(key_i, shape, dtype)``.

  Integer leaves (the per-example dropout keys of :func:`jaxrnn.dropout`) are kept.
  """
  if carry_init is None:
    return carry
  if not callable(carry_init):
    raise TypeError(f"carry_init must be an initializer carry_init(key, shape, dtype), got "
                    f"{type(carry_init).__name__}")
  leaves, treedef = jax.tree.flatten(carry)
  keys = jax.random.split(key, max(len(leaves), 1))
  out = [jnp.asarray(carry_init(k, leaf.shape, leaf.dtype), leaf.dtype) if jnp.issubdtype(leaf.dtype, jnp.floating)
         else leaf for k, leaf in zip(keys, leaves)]
  return jax.tree.unflatten(treedef, out)


def in_layout(fn: Any, hs: jax.Array, batch_ndim: int, time_major: bool) -> jax.Array:
  """``fn`` of the time-major form of ``hs`` (``[*B, T, ...]`` or ``[T, *B, ...]``), back in the caller's layout."""
  if time_major:
    return fn(hs)
  return jnp.moveaxis(fn(jnp.moveaxis(hs, batch_ndim, 0)), 0, batch_ndim)


def flax_order(hs: Any, seq_lengths: Any, batch_ndim: int, time_major: bool) -> Any:
  """The outputs of a reversed run in Flax's ``keep_order=False`` order (processing order, padding at the end)."""
  return jax.tree.map(lambda a: in_layout(lambda t: sequences.reverse_valid(t, seq_lengths), a, batch_ndim,
                                          time_major), hs)


def zero_padding(hs: Any, seq_lengths: Any, batch_ndim: int, time_major: bool) -> Any:
  """``hs`` with the outputs at padded steps (``t >= seq_lengths``) set to zero, as :func:`jaxrnn.unroll` does."""
  if seq_lengths is None:
    return hs

  def zero(t):
    mask = sequences.length_mask(seq_lengths, t.shape[0])
    return jnp.where(sequences.expand_to(mask, t.ndim), t, jnp.zeros_like(t))

  return jax.tree.map(lambda a: in_layout(zero, a, batch_ndim, time_major), hs)


def resolve_deterministic(name: str, *values: Optional[bool]) -> Optional[bool]:
  """The first of ``values`` (call argument, layer attribute, ...) that is not ``None``, checked to be a bool."""
  for v in values:
    if v is not None:
      if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be True, False or None, got {type(v).__name__} {v!r}")
      return bool(v)
  return None


def refuse_for_subclass(layer: str, cell_module: Any, *, remat: Any, hoist: Any, options: Any, mode: str,
                        deterministic: Optional[bool]) -> None:
  """Raises if a run option is set for a ``CellModule`` subclass, whose ``__call__`` Flax's own scan runs."""
  refused = [f"{k}={v!r}" for k, v in (("remat", remat), ("hoist", hoist), ("options", options))
             if v not in (False, None)]
  if mode == "sequence":
    refused.append("mode='sequence'")
  if deterministic is not None:
    refused.append(f"deterministic={deterministic}")
  if refused:
    name = type(cell_module).__name__
    raise ValueError(f"{', '.join(refused)}: {name} overrides CellModule, so {layer} runs its __call__ with "
                     f"Flax's own RNN (a scan of an opaque step), which has no such option; give the behaviour "
                     f"to the jaxrnn cell instead (jaxrnn.dropout, zoneout, ...) and wrap it in a plain "
                     f"CellModule, or handle it (deterministic too) in {name} itself")


def run_layer(cell: Any, params: Any, inputs: Any, *, initial_carry: Any, seq_lengths: Any, reverse: bool,
              keep_order: bool, time_major: bool, mode: str, run_options: Mapping[str, Any],
              return_carry: bool) -> Any:
  """The body of both adapters' ``RNN.__call__`` for a plain cell module: :func:`jaxrnn.unroll` from
  ``initial_carry``, outputs in Flax's order (``keep_order=False`` with ``reverse``: processing order)."""
  carry, hs = jaxrnn.unroll(cell, params, initial_carry, inputs, seq_lengths=seq_lengths, reverse=reverse,
                            time_major=time_major, mode=mode, **run_options)
  if reverse and not keep_order:
    hs = flax_order(hs, seq_lengths, len(step_shape(inputs, cell.input_ndim, time_major)[0]), time_major)
  return (carry, hs) if return_carry else hs


def run_bidirectional(forward_rnn: Any, backward_rnn: Any, merge_fn: Any, inputs: Any, *, initial_carry: Any,
                      seq_lengths: Any, return_carry: bool, time_major: bool, forward_kwargs: Mapping[str, Any],
                      backward_kwargs: Mapping[str, Any]) -> Any:
  """The body of both adapters' ``Bidirectional.__call__``: both layers over ``inputs`` (the backward one with
  ``keep_order=True``, so both outputs are in input order), outputs merged. ``*_kwargs``: more call arguments of
  each layer (keys, ``deterministic``)."""
  c_f, c_b = (None, None) if initial_carry is None else initial_carry
  carry_f, hs_f = forward_rnn(inputs, initial_carry=c_f, seq_lengths=seq_lengths, return_carry=True,
                              reverse=False, time_major=time_major, **forward_kwargs)
  carry_b, hs_b = backward_rnn(inputs, initial_carry=c_b, seq_lengths=seq_lengths, return_carry=True,
                               reverse=True, keep_order=True, time_major=time_major, **backward_kwargs)
  hs = merge_fn(hs_f, hs_b)
  return ((carry_f, carry_b), hs) if return_carry else hs


def concatenate(a: jax.Array, b: jax.Array) -> jax.Array:
  """The default ``merge_fn`` of the bidirectional adapters: features side by side, ``[..., H_f + H_b]``."""
  return jax.numpy.concatenate([a, b], axis=-1)
