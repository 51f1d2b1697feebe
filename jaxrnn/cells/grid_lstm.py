"""Grid LSTM (Kalchbrenner, Danihelka & Graves 2015, arXiv:1507.01526): LSTM cells along every dimension of a grid.

This file holds the N-dimensional block (:func:`grid_lstm_block`), the 2-D time x depth network as a cell
(:func:`grid_lstm`) and the 1-D grid as a gated deep feed-forward net (:func:`grid_lstm_1d`).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Tuple, Unpack

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn.cells import _dense
from jaxrnn.cells import _parts
from jaxrnn.cells.options import DenseOptions, resolve
from jaxrnn.types import Cell


class GridLSTMTransformParams(NamedTuple):
  """One dimension's LSTM transform of a Grid LSTM block. Gate blocks are ordered ``[u, f, c, o]``."""

  w: jax.Array  # [N*H, 4H] kernel applied to the concatenated hidden vectors H = [h_1; ...; h_N]
  b: Optional[jax.Array]  # [4H] bias (forget block initialised to forget_bias); None if use_bias=False


class GridLSTMBlockParams(NamedTuple):
  """A 2-D (time x depth) Grid LSTM block: one transform per dimension."""

  time: GridLSTMTransformParams  # w [2H, 4H]: updates the memory carried along time
  depth: GridLSTMTransformParams  # w [2H, 4H]: updates the memory carried along depth


class GridLSTMParams(NamedTuple):
  """Parameters of :func:`grid_lstm`."""

  w_x: jax.Array  # [F, H] input projection to the depth hidden vector entering the first block
  b_x: Optional[jax.Array]  # [H] its bias; None if use_bias=False
  blocks: Tuple[GridLSTMBlockParams, ...]  # num_layers blocks (bottom first), or 1 block shared if tied


class GridLSTMCarry(NamedTuple):
  """The time dimension's state of one layer of :func:`grid_lstm`."""

  h: jax.Array  # [*B, H] hidden vector along time
  m: jax.Array  # [*B, H] memory vector along time


class GridLSTM1DParams(NamedTuple):
  """Parameters of :func:`grid_lstm_1d`."""

  w_x: jax.Array  # [F, H] input projection to h_0
  b_x: Optional[jax.Array]  # [H] its bias; None if use_bias=False
  blocks: Tuple[GridLSTMTransformParams, ...]  # w [H, 4H]; num_blocks of them, or 1 shared if tied


class GridLSTM1D(NamedTuple):
  """A 1-D Grid LSTM: a feed-forward net (no time axis), built by :func:`grid_lstm_1d`.

  Fields:
    init: ``init(key, input_size) -> GridLSTM1DParams``.
    apply: ``apply(params, x) -> h``, ``x: [*B, F]`` to ``h: [*B, H]``.
  """

  init: Callable[..., GridLSTM1DParams]
  apply: Callable[..., jax.Array]


def grid_lstm_block(p: GridLSTMTransformParams, hs: jax.Array, m: jax.Array, *, dtype: Optional[Any] = None,
                    precision: Any = None) -> Tuple[jax.Array, jax.Array]:
  r"""One dimension's transform ``(h', m') = LSTM(H, m)`` of a Grid LSTM block (Kalchbrenner et al., eq. 2-3).

  .. math::

     g^u = \sigma(H W^u + b^u),\quad g^f = \sigma(H W^f + b^f),\quad g^o = \sigma(H W^o + b^o),\quad
     g^c = \tanh(H W^c + b^c) \\
     m' = g^f \odot m + g^u \odot g^c,\qquad h' = \tanh(g^o \odot m')

  Note the paper's output ``h' = tanh(g^o ⊙ m')``, not the usual ``g^o ⊙ tanh(m')``. An N-dimensional block
  applies one such transform per dimension ``d`` to the same ``H = [h_1; ...; h_N]`` and its own ``m_d``.

  Args:
    p: the transform's params, ``w: [K, 4H]``, ``b: [4H]`` or ``None``.
    hs: the concatenated hidden vectors ``H: [*B, K]``.
    m: the dimension's memory vector ``[*B, H]``; the gate math runs in its dtype.
    dtype: compute dtype of the matrix product.
    precision: ``jax.lax.Precision`` of the matrix product.

  Returns:
    ``(h', m')``, both ``[*B, H]`` in ``m``'s dtype.
  """
  z = _dense.project(hs, p.w, p.b, dtype, precision).astype(m.dtype)
  u, f, c, o = jnp.split(z, 4, axis=-1)
  m_new = jax.nn.sigmoid(f) * m + jax.nn.sigmoid(u) * jnp.tanh(c)
  return jnp.tanh(jax.nn.sigmoid(o) * m_new), m_new


def _init_transform(key, in_size, H, n_dims, *, kernel_init, use_bias, bias_init, forget_bias, param_dtype):
  """A transform whose kernel has one ``[H, H]`` block per input hidden vector and gate, initialised apart."""
  k_w, k_b = jax.random.split(key)
  rows = jax.random.split(k_w, n_dims)
  w = jnp.concatenate([_dense.init_blocks(k, kernel_init, in_size, H, 4, param_dtype) for k in rows], axis=0)
  b = bias_init(k_b, (4 * H,), param_dtype).at[H:2 * H].add(forget_bias) if use_bias else None
  return GridLSTMTransformParams(w=w, b=b)


def _check_common(factory, hidden_size, num, num_name, forget_bias, use_bias, options):
  """``(H, num, (dtype, precision), t_kw)``: the checked arguments; ``t_kw`` the settings of :func:`_init_transform`."""
  hidden_size = _dense.hyper(hidden_size).hidden_size
  opts = resolve(factory, options, DenseOptions)
  num = _checks.positive_int(num_name, num)
  t_kw = dict(kernel_init=opts.kernel_init, use_bias=use_bias, bias_init=opts.bias_init,
              forget_bias=_dense.forget_bias(forget_bias, use_bias), param_dtype=opts.param_dtype)
  return hidden_size, num, (opts.dtype, opts.precision), t_kw


def _init_input(key, input_size, H, t_kw):
  """``(w_x [F, H], b_x [H] or None, key)``: the input projection (drawn as ``t_kw`` says) and a key for the blocks."""
  input_size = _dense.check_init_args(key, input_size)
  k_x, k_bx, k_blocks = jax.random.split(key, 3)
  w_x = _dense.init_blocks(k_x, t_kw["kernel_init"], input_size, H, 1, t_kw["param_dtype"])
  b_x = t_kw["bias_init"](k_bx, (H,), t_kw["param_dtype"]) if t_kw["use_bias"] else None
  return w_x, b_x, k_blocks


def _check_blocks(params: Any, params_type: type, block_type: type, n_blocks: int) -> None:
  if not isinstance(params, params_type):
    raise TypeError(f"params must be a {params_type.__name__} (from init), got {type(params).__name__}")
  blocks = params.blocks
  if not isinstance(blocks, tuple) or len(blocks) != n_blocks or not all(isinstance(b, block_type) for b in blocks):
    raise ValueError(f"params.blocks must be a tuple of {n_blocks} {block_type.__name__} (tied weights have one), "
                     f"got {type(blocks).__name__} of length {len(blocks) if isinstance(blocks, tuple) else '?'}")


def grid_lstm(
    hidden_size: int,
    num_layers: int,
    *,
    tied: bool = False,
    depth_priority: bool = True,
    forget_bias: Optional[float] = None,
    use_bias: bool = True,
    **options: Unpack[DenseOptions],
) -> Cell:
  r"""A 2-D Grid LSTM over time x depth (a "2-LSTM" of Kalchbrenner et al. 2015) as one cell.

  Each ``step`` runs one time step up through ``num_layers`` 2-D blocks; :func:`jaxrnn.unroll` scans the time
  dimension. Block :math:`l` at time :math:`t` receives the time dimension's :math:`(h^T_{t-1,l}, m^T_{t-1,l})`
  (the carry) and the depth dimension's :math:`(h^D_{t,l-1}, m^D_{t,l-1})` from the block below. The input enters
  as the depth hidden vector of the first block, :math:`h^D_{t,0} = x_t W_x + b_x`, :math:`m^D_{t,0} = 0`. With
  depth as the priority dimension (the paper's choice for deep networks), the time transform is computed first and
  the depth transform sees its output:

  .. math::

     (h^T_{t,l}, m^T_{t,l}) &= \mathrm{LSTM}_T([h^T_{t-1,l}; h^D_{t,l-1}],\ m^T_{t-1,l}) \\
     (h^D_{t,l}, m^D_{t,l}) &= \mathrm{LSTM}_D([h^T_{t,l}; h^D_{t,l-1}],\ m^D_{t,l-1})

  where :math:`\mathrm{LSTM}(H, m)` is :func:`grid_lstm_block` (:math:`h' = \tanh(g^o \odot m')`). With
  ``depth_priority=False`` both transforms read :math:`[h^T_{t-1,l}; h^D_{t,l-1}]`. The output is
  :math:`h^D_{t,L}`, the top block's depth hidden vector.

  Args:
    hidden_size: ``H``, the width of every hidden and memory vector.
    num_layers: the number of blocks along depth.
    tied: share one block's weights across all depths (the paper's "tied" Grid LSTM); weights are always shared
      along time.
    depth_priority: compute the time transform first and feed its output to the depth transform.
    forget_bias: added to each forget gate's bias at initialisation (``None``: 1.0 with a bias, 0.0 without).
    use_bias: whether the transforms and the input projection have biases.
    **options: :class:`jaxrnn.cells.options.DenseOptions`: ``kernel_init`` and ``bias_init`` draw ``w_x: [F, H]``,
      each ``[H, H]`` gate block of the transforms' ``w: [2H, 4H]`` and the biases ``b_x: [H]``, ``b: [4H]`` (then
      ``forget_bias`` is added); ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`jaxrnn.Cell` with :class:`GridLSTMParams` (``blocks`` has ``num_layers`` entries, or one if
    ``tied``) and a carry that is a tuple of ``num_layers`` ``GridLSTMCarry(h [*B, H], m [*B, H])``; ``step``
    returns ``(carry, h^D_top)``. ``input_transform`` is the input projection, hoisted out of the time loop.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.grid_lstm(8, num_layers=3, tied=True)
    >>> params = cell.init(jax.random.key(0), 3)
    >>> len(params.blocks), params.blocks[0].time.w.shape
    (1, (16, 32))
    >>> carry, hs = jaxrnn.unroll(cell, params, cell.initial_carry(params, (2,)), jnp.ones((2, 5, 3)))
    >>> hs.shape, len(carry)
    ((2, 5, 8), 3)
  """
  H, L, (dtype, precision), t_kw = _check_common("grid_lstm", hidden_size, num_layers, "num_layers", forget_bias,
                                                 use_bias, options)
  n_blocks = 1 if tied else L

  def init(key, input_size):
    w_x, b_x, k_blocks = _init_input(key, input_size, H, t_kw)
    blocks = []
    for k in jax.random.split(k_blocks, n_blocks):
      k_t, k_d = jax.random.split(k)
      blocks.append(GridLSTMBlockParams(time=_init_transform(k_t, H, H, 2, **t_kw),
                                        depth=_init_transform(k_d, H, H, 2, **t_kw)))
    return GridLSTMParams(w_x=w_x, b_x=b_x, blocks=tuple(blocks))

  def zeros_carry(params, batch_shape, dt):
    del params
    zeros = jnp.zeros(batch_shape + (H,), dt)
    return tuple(GridLSTMCarry(h=zeros, m=zeros) for _ in range(L))

  initial_carry = _parts.initial_carry(zeros_carry, lambda params: params.w_x.dtype)

  def input_transform(params, xs):
    xs = _checks.step_input("x", xs, (params.w_x.shape[0],))
    return _dense.project(xs, params.w_x, params.b_x, dtype, precision)

  def step_transformed(params, carry, u):
    u = _dense.check_transformed("input_transform(x)", u, H)
    _check_blocks(params, GridLSTMParams, GridLSTMBlockParams, n_blocks)
    _dense.check_layer_carries(carry, L, GridLSTMCarry, u.shape[:-1], (H,) * L)
    h_d = u.astype(carry[0].m.dtype)
    m_d = jnp.zeros_like(carry[0].m)
    new = []
    for l in range(L):
      blk = params.blocks[0 if tied else l]
      h_t, m_t = grid_lstm_block(blk.time, jnp.concatenate([carry[l].h, h_d], axis=-1), carry[l].m,
                                 dtype=dtype, precision=precision)
      h_in = h_t if depth_priority else carry[l].h
      h_d, m_d = grid_lstm_block(blk.depth, jnp.concatenate([h_in, h_d], axis=-1), m_d,
                                 dtype=dtype, precision=precision)
      new.append(GridLSTMCarry(h=h_t, m=m_t))
    return tuple(new), h_d

  return _parts.transformed_cell(init, initial_carry, input_transform, step_transformed, name="grid_lstm")


def grid_lstm_1d(
    hidden_size: int,
    num_blocks: int,
    *,
    tied: bool = False,
    forget_bias: Optional[float] = None,
    use_bias: bool = True,
    **options: Unpack[DenseOptions],
) -> GridLSTM1D:
  r"""A 1-D Grid LSTM: a gated deep feed-forward net of ``num_blocks`` LSTM blocks along depth (no time axis).

  Kalchbrenner et al. (2015, Sec. 3.3) note that a 1-D Grid LSTM is a feed-forward network with LSTM gating
  between layers, like a highway network (Srivastava et al. 2015). The input is projected to the first hidden
  vector and the memory starts at zero:

  .. math::

     h_0 = x W_x + b_x,\qquad m_0 = 0,\qquad (h_k, m_k) = \mathrm{LSTM}_k(h_{k-1}, m_{k-1}),\ k = 1..K

  with :math:`\mathrm{LSTM}` as in :func:`grid_lstm_block`; the output is :math:`h_K`.

  Args:
    hidden_size: ``H``.
    num_blocks: ``K``, the depth.
    tied: share one block's weights across all ``K`` blocks.
    forget_bias: added to each forget gate's bias at initialisation (``None``: 1.0 with a bias, 0.0 without).
    use_bias: whether the blocks and the input projection have biases.
    **options: :class:`jaxrnn.cells.options.DenseOptions`: ``kernel_init`` and ``bias_init`` draw ``w_x: [F, H]``,
      each block's ``w: [H, 4H]`` gate by gate and the biases; ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`GridLSTM1D` ``(init, apply)``: ``init(key, input_size) -> GridLSTM1DParams`` and
    ``apply(params, x) -> h`` with ``x: [*B, F]`` and ``h: [*B, H]`` (in ``x``'s dtype, or the params' if higher).

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> net = jaxrnn.cells.grid_lstm.grid_lstm_1d(8, num_blocks=4)
    >>> params = net.init(jax.random.key(0), 3)
    >>> net.apply(params, jnp.ones((5, 3))).shape
    (5, 8)
  """
  H, K, (dtype, precision), t_kw = _check_common("grid_lstm_1d", hidden_size, num_blocks, "num_blocks", forget_bias,
                                                 use_bias, options)
  n_blocks = 1 if tied else K

  def init(key, input_size):
    w_x, b_x, k_blocks = _init_input(key, input_size, H, t_kw)
    blocks = tuple(_init_transform(k, H, H, 1, **t_kw) for k in jax.random.split(k_blocks, n_blocks))
    return GridLSTM1DParams(w_x=w_x, b_x=b_x, blocks=blocks)

  def apply(params, x):
    _check_blocks(params, GridLSTM1DParams, GridLSTMTransformParams, n_blocks)
    x = _checks.step_input("x", x, (params.w_x.shape[0],))
    h = _dense.project(x, params.w_x, params.b_x, dtype, precision)
    h = h.astype(jnp.result_type(x.dtype, params.w_x.dtype))
    m = jnp.zeros_like(h)
    for k in range(K):
      h, m = grid_lstm_block(params.blocks[0 if tied else k], h, m, dtype=dtype, precision=precision)
    return h

  return GridLSTM1D(init=init, apply=apply)


class GridBlock(NamedTuple):
  """An N-dimensional Grid LSTM block, built by :func:`grid_block`.

  Fields:
    init: ``init(key) -> tuple`` of ``N`` :class:`GridLSTMTransformParams`, one per dimension (``w: [N*H, 4H]``).
    apply: ``apply(params, hs, ms) -> (hs', ms')`` with ``hs``, ``ms`` tuples of ``N`` arrays ``[*B, H]``.
  """

  init: Callable[..., Tuple[GridLSTMTransformParams, ...]]
  apply: Callable[..., Tuple[Tuple[jax.Array, ...], Tuple[jax.Array, ...]]]


def grid_block(
    hidden_size: int,
    num_dims: int,
    *,
    forget_bias: Optional[float] = None,
    use_bias: bool = True,
    **options: Unpack[DenseOptions],
) -> GridBlock:
  r"""The N-dimensional Grid LSTM block (Kalchbrenner et al. 2015, eq. 4): N hidden vectors and N memories in and out.

  .. math::

     H = [h_1; \dots; h_N],\qquad (h'_d, m'_d) = \mathrm{LSTM}_d(H, m_d),\ d = 1..N

  each :math:`\mathrm{LSTM}_d` as in :func:`grid_lstm_block` (its own weights ``[N*H, 4H]``). :func:`grid_lstm`
  is the 2-D (time x depth) network of such blocks; this is the block alone, for grids of any dimension.

  Args:
    hidden_size: ``H``, the size of every hidden and memory vector.
    num_dims: ``N``.
    forget_bias: added to each forget gate's bias at initialisation (``None``: 1.0 with a bias, 0.0 without).
    use_bias: whether the transforms have biases.
    **options: :class:`jaxrnn.cells.options.DenseOptions`: ``kernel_init`` and ``bias_init`` draw each ``[H, H]`` gate
      block of the transforms' ``w: [N*H, 4H]``, and ``b: [4H]``; ``dtype``, ``param_dtype``, ``precision``.

  Returns:
    A :class:`GridBlock` ``(init, apply)``.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> block = jaxrnn.cells.grid_lstm.grid_block(4, num_dims=3)
    >>> params = block.init(jax.random.key(0))
    >>> hs, ms = block.apply(params, (jnp.ones((2, 4)),) * 3, (jnp.zeros((2, 4)),) * 3)
    >>> len(hs), hs[0].shape, ms[2].shape
    (3, (2, 4), (2, 4))
  """
  H, N, (dtype, precision), t_kw = _check_common("grid_block", hidden_size, num_dims, "num_dims", forget_bias,
                                                 use_bias, options)

  def init(key):
    _checks.key("key", key)
    return tuple(_init_transform(k, H, H, N, **t_kw) for k in jax.random.split(key, N))

  def apply(params, hs, ms):
    for name, value in (("params", params), ("hs", hs), ("ms", ms)):
      if not isinstance(value, (tuple, list)) or len(value) != N:
        raise ValueError(f"{name} must be a tuple of num_dims={N} entries, got {type(value).__name__} of length "
                         f"{len(value) if isinstance(value, (tuple, list)) else '?'}")
    batch = jnp.shape(hs[0])[:-1]
    for d in range(N):
      _checks.carry_leaf(f"hs[{d}]", hs[d], batch, (H,))
      _checks.carry_leaf(f"ms[{d}]", ms[d], batch, (H,))
    joined = jnp.concatenate(hs, axis=-1)
    out = [grid_lstm_block(params[d], joined, ms[d], dtype=dtype, precision=precision) for d in range(N)]
    return tuple(h for h, _ in out), tuple(m for _, m in out)

  return GridBlock(init=init, apply=apply)
