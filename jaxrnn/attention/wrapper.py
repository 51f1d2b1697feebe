"""An attention wrapper: any cell plus an attention read over a memory, with input feeding (Luong et al. 2015)."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Protocol, Unpack, cast

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.attention import mechanisms as mech_lib
from jaxrnn.cells import _dense
from jaxrnn.cells.options import KernelOptions
from jaxrnn.types import Cell


class AttentionWrapperParams(NamedTuple):
  """Parameters of :func:`attention_wrapper`."""

  cell: Any  # the wrapped cell's params; its input is [x_t; a_{t-1}], size F + O
  attention: Any  # the mechanism's params (query size H, memory size D)
  w_out: Optional[jax.Array]  # [H + D, L] W_c of a_t = tanh([h_t; c_t] W_c); None without attention_layer_size


class AttentionCarry(NamedTuple):
  """Carry of :func:`attention_wrapper`: the wrapped cell's carry, the last read, and the (fixed) memory.

  ``weights`` is the attention of the last step: ``unroll(..., return_all_carries=True)`` returns the whole
  alignment ``carries.weights: [*B, T, S]``.
  """

  cell: Any  # the wrapped cell's carry
  attention: jax.Array  # [*B, O] a_{t-1}: the output, fed back with the next input (O = L, or D without a layer)
  context: jax.Array  # [*B, D] c_{t-1} = sum_s alpha_s memory_s
  weights: jax.Array  # [*B, S] alpha_{t-1}, zeros at t = 0; exactly 0 where mask is False
  keys: jax.Array  # [*B, S, K] mechanism.project_memory(memory), computed once in initial_carry
  memory: jax.Array  # [*B, S, D] the memory read by the attention (e.g. encoder outputs)
  mask: jax.Array  # bool[*B, S] valid memory positions


def _first_float_dtype(tree: Any) -> Any:
  for leaf in jax.tree.leaves(tree):
    if jnp.issubdtype(leaf.dtype, jnp.floating):
      return leaf.dtype
  return jnp.float32


def attention_wrapper(
    cell: Cell,
    mechanism: mech_lib.AttentionMechanism,
    *,
    memory_size: int,
    attention_layer_size: Optional[int] = None,
    **options: Unpack[KernelOptions],
) -> Cell:
  r"""Wraps ``cell`` with an attention read over a per-sequence memory (Bahdanau et al. 2015; Luong et al. 2015).

  One step, with input feeding of the previous attentional vector ``a_{t-1}``:

  .. math::

     (s_t, h_t) &= \mathrm{cell}(s_{t-1}, [x_t; a_{t-1}]) \\
     (c_t, \alpha_t) &= \mathrm{attend}(h_t, \mathrm{memory}, \mathrm{mask}, \alpha_{t-1}) \\
     a_t &= \tanh([h_t; c_t] W_c) \quad\text{(or } a_t = c_t \text{ without } \texttt{attention\_layer\_size})

  and the step returns ``(carry, a_t)``. The memory is data, not a parameter: it lives in the carry, with its
  projection (``mechanism.project_memory``, computed once in ``initial_carry``, outside the scan) and its mask,
  so batches of different memories run under ``vmap``/``scan`` like any other carry. Build the initial carry with
  ``initial_carry(params, batch_shape, memory=memory, memory_mask=mask)``, or bind a memory with
  :func:`bind_memory` to get a cell with the plain ``initial_carry(params, batch_shape)``.

  Args:
    cell: any vector :class:`jaxrnn.Cell` (its output ``h_t: [*B, H]`` is the attention query).
    mechanism: an :class:`jaxrnn.AttentionMechanism` (``additive_attention``, ``luong_attention``, ...).
    memory_size: ``D``, the memory's feature size.
    attention_layer_size: ``L``: output ``a_t = tanh([h_t; c_t] W_c)`` (Luong's attentional hidden state);
      ``None``: output and feed back the context ``c_t``.
    **options: :class:`jaxrnn.cells.options.KernelOptions` of ``W_c``: ``kernel_init`` (default
      ``glorot_uniform()``), ``dtype`` (of its product), ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with ``AttentionWrapperParams`` and ``AttentionCarry``; ``step`` returns
    ``(carry, a_t)`` with ``a_t: [*B, O]``.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.attention_wrapper(jaxrnn.gru(8), jaxrnn.additive_attention(6), memory_size=5,
    ...                                 attention_layer_size=7)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> memory, mask = jnp.ones((2, 4, 5)), jnp.array([[True] * 4, [True, True, False, False]])
    >>> carry = cell.initial_carry(params, (2,), memory=memory, memory_mask=mask)
    >>> final, outs, carries = jaxrnn.unroll(cell, params, carry, jnp.ones((2, 6, 3)), return_all_carries=True)
    >>> outs.shape, carries.weights.shape, carries.weights[1, :, 2:].max().item()
    ((2, 6, 7), (2, 6, 4), 0.0)
  """
  _checks.cell("cell", cell)
  if cell.input_ndim != 1:
    raise ValueError(f"attention_wrapper needs a vector cell (input_ndim=1), got {cell.name} with "
                     f"input_ndim={cell.input_ndim}")
  if not isinstance(mechanism, mech_lib.AttentionMechanism):
    raise TypeError(f"mechanism must be a jaxrnn.AttentionMechanism, got {type(mechanism).__name__}")
  D = _checks.positive_int("memory_size", memory_size)
  L = None if attention_layer_size is None else _checks.positive_int("attention_layer_size", attention_layer_size)
  kernel_init, dtype, param_dtype, precision = mech_lib.kernel_options("attention_wrapper", options)
  O = D if L is None else L

  def query_size(cell_params, input_size):
    carry = jax.eval_shape(lambda p: cell.initial_carry(p, ()), cell_params)
    x = jax.ShapeDtypeStruct((input_size + O,), _first_float_dtype(cell_params))
    _, h = jax.eval_shape(cell.step, cell_params, carry, x)
    if h.ndim != 1:
      raise ValueError(f"attention_wrapper needs a cell whose output is a vector [*B, H], got shape {h.shape}")
    return h.shape[0]

  def init(key, input_size):
    _checks.key("key", key)
    F = _checks.positive_int("input_size", input_size)
    k_c, k_a, k_o = jax.random.split(key, 3)
    cell_params = cell.init(k_c, F + O)
    H = query_size(cell_params, F)
    w_out = None if L is None else kernel_init(k_o, (H + D, L), param_dtype)
    return AttentionWrapperParams(cell=cell_params, attention=mechanism.init(k_a, H, D), w_out=w_out)

  def initial_carry(params, batch_shape=(), dtype=None, *, key=None, memory=None, memory_mask=None):
    _checks.initial_carry_params(params)
    batch_shape = _checks.batch_shape("batch_shape", batch_shape)
    if memory is None:
      raise ValueError(
          "attention_wrapper's initial_carry needs memory=[*B, S, D] (and memory_mask=bool[*B, S]); or bind one "
          "with jaxrnn.bind_memory(cell, memory, memory_mask)")
    memory, mask = mech_lib.check_memory(memory, memory_mask)
    if memory.shape[-1] != D:
      raise ValueError(f"memory must have feature size memory_size={D}, got shape {memory.shape}")
    S = memory.shape[-2]
    if memory.ndim == 2:  # one memory shared by the whole batch
      memory = jnp.broadcast_to(memory, batch_shape + (S, D))
      mask = jnp.broadcast_to(mask, batch_shape + (S,))
    elif tuple(memory.shape[:-2]) != batch_shape:
      raise ValueError(f"memory must have shape [*B, S, D] with B = batch_shape {batch_shape} (or [S, D]), got "
                       f"shape {memory.shape}")
    cell_carry = cell.initial_carry(params.cell, batch_shape, dtype, key=key)
    dt = _checks.dtype("dtype", dtype) or _first_float_dtype(cell_carry)
    memory = memory.astype(dt)
    keys = mechanism.project_memory(params.attention, memory).astype(dt)  # once per sequence
    return AttentionCarry(cell=cell_carry, attention=jnp.zeros(batch_shape + (O,), dt),
                          context=jnp.zeros(batch_shape + (D,), dt), weights=jnp.zeros(batch_shape + (S,), dt),
                          keys=keys, memory=memory, mask=mask)

  def step(params, carry, x):
    _checks.carry_type("carry", carry, AttentionCarry)
    x = _checks.floating("x", x)
    batch = tuple(carry.attention.shape[:-1])
    if x.ndim < 1 or tuple(x.shape[:-1]) != batch:
      raise ValueError(f"x must have shape [*B, F] with B = the carry's batch shape {batch}, got shape {x.shape}")
    S = carry.memory.shape[-2]
    _checks.carry_leaf("carry.attention", carry.attention, batch, (O,))
    _checks.carry_leaf("carry.context", carry.context, batch, (D,))
    _checks.carry_leaf("carry.weights", carry.weights, batch, (S,))
    _checks.carry_leaf("carry.memory", carry.memory, batch, (S, D))
    if tuple(carry.mask.shape) != batch + (S,) or carry.mask.dtype != jnp.bool_:
      raise ValueError(f"carry.mask must be bool{list(batch + (S,))}, got {carry.mask.dtype}{list(carry.mask.shape)}")
    dt = carry.attention.dtype
    io = jnp.result_type(x, carry.attention)
    inputs = jnp.concatenate([x.astype(io), carry.attention.astype(io)], axis=-1)  # input feeding
    try:
      cell_carry, h = cell.step(params.cell, carry.cell, inputs)
    except ValueError as e:
      raise ValueError(f"x [*B, F] with the fed-back attention vector [*B, {O}] appended does not fit the wrapped "
                       f"cell: {e}") from None
    context, weights = mech_lib.attend(mechanism, params.attention, h.astype(dt), carry.keys, carry.memory,
                                       carry.mask, carry.weights)
    if params.w_out is None:
      attention = context
    else:
      hc = jnp.concatenate([h.astype(dt), context], axis=-1)
      attention = jnp.tanh(_dense.project(hc, params.w_out, None, dtype, precision).astype(dt))
    new = carry._replace(cell=cell_carry, attention=attention.astype(dt), context=context.astype(dt),
                         weights=weights.astype(carry.weights.dtype))
    return new, new.attention

  return Cell(init=init, initial_carry=initial_carry, step=step, name=f"attention_wrapper({cell.name})")


class _MemoryInitialCarryFn(Protocol):
  """An attention wrapper's ``initial_carry``: the contract's, and the ``memory`` it attends over."""

  def __call__(self, params: Any, /, batch_shape: Any = (), dtype: Any = None, *, key: Any = None,
               memory: Optional[jax.Array] = None, memory_mask: Optional[jax.Array] = None) -> Any:
    ...


def bind_memory(cell: Cell, memory: jax.Array, memory_mask: Optional[jax.Array] = None) -> Cell:
  """``cell`` (an :func:`attention_wrapper`) with ``memory`` bound: ``initial_carry(params, batch_shape, dtype, *,
  key=None)``.

  For code that only knows the plain cell contract (combinators, generic loops). Build it per batch (e.g. inside
  the jitted loss); ``memory: [*B, S, D]`` or ``[S, D]`` shared by every example.
  """
  inner = cast(_MemoryInitialCarryFn, cell.initial_carry)  # an attention_wrapper's takes the memory

  def initial_carry(params, batch_shape=(), dtype=None, *, key=None):
    return inner(params, batch_shape, dtype, key=key, memory=memory, memory_mask=memory_mask)

  return cell._replace(initial_carry=initial_carry)


def doubly_stochastic_penalty(weights: jax.Array, *, step_mask: Optional[jax.Array] = None,
                              memory_mask: Optional[jax.Array] = None, target: float = 1.0) -> jax.Array:
  r"""The "doubly stochastic" attention regulariser of Xu et al. 2015 (Show, Attend and Tell, eq. 14).

  .. math::  \sum_s \big(\tau - \textstyle\sum_t \alpha_{t,s}\big)^2

  encourages every memory position to receive ``tau`` total attention over the output steps. Multiply by
  ``lambda`` and add to the loss.

  Args:
    weights: ``[*B, T, S]`` attention weights per step (``carries.weights`` of ``unroll(...,
      return_all_carries=True)``).
    step_mask: ``None`` or ``bool[*B, T]``: steps that count (padded decoder steps excluded).
    memory_mask: ``None`` or ``bool[*B, S]``: positions that count (padded memory excluded).
    target: ``tau`` (1.0 in Xu et al.).

  Returns:
    ``[*B]`` penalty per sequence.

  Example:

    >>> import jax.numpy as jnp, jaxrnn
    >>> w = jnp.array([[1.0, 0.0], [1.0, 0.0]])                    # [T=2, S=2]: position 0 read twice
    >>> jaxrnn.doubly_stochastic_penalty(w).item()
    2.0
  """
  weights = _checks.floating("weights", weights)
  if weights.ndim < 2:
    raise ValueError(f"weights must have shape [*B, T, S], got shape {weights.shape}")
  if step_mask is not None:
    if tuple(step_mask.shape) != tuple(weights.shape[:-1]):
      raise ValueError(f"step_mask must have shape {weights.shape[:-1]} ([*B, T]), got {step_mask.shape}")
    weights = jnp.where(step_mask[..., None], weights, jnp.zeros_like(weights))
  per_position = (target - jnp.sum(weights, axis=-2)) ** 2  # [*B, S]
  if memory_mask is not None:
    if tuple(memory_mask.shape) != tuple(per_position.shape):
      raise ValueError(f"memory_mask must have shape {per_position.shape} ([*B, S]), got {memory_mask.shape}")
    per_position = jnp.where(memory_mask, per_position, jnp.zeros_like(per_position))
  return jnp.sum(per_position, axis=-1)
