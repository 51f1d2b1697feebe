"""Per-step carry resets at episode boundaries, for reinforcement learning (as Haiku's ``ResetCore``)."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from jaxrnn import _checks
from jaxrnn import sequences
from jaxrnn.types import Cell


def with_reset_flags(xs: jax.Array, should_reset: jax.Array) -> jax.Array:
  """Packs inputs and reset flags for :func:`reset_on`: ``[..., F]`` and ``bool[...]`` -> ``[..., F + 1]``.

  >>> import jax.numpy as jnp
  >>> with_reset_flags(jnp.zeros((2, 3)), jnp.array([True, False])).tolist()
  [[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
  """
  xs = _checks.floating("xs", xs)
  should_reset = jnp.asarray(should_reset)
  if should_reset.shape != xs.shape[:-1]:
    raise ValueError(f"should_reset must have the shape of xs without its feature axis {xs.shape[:-1]}, got "
                     f"{should_reset.shape}")
  return jnp.concatenate([xs, should_reset.astype(xs.dtype)[..., None]], axis=-1)


def reset_on(cell: Cell, name: Optional[str] = None) -> Cell:
  """Resets the carry to the cell's initial carry, per example, at the steps where a flag is set.

  The step input packs the flag as an extra last feature (:func:`with_reset_flags`), so that
  :func:`jaxrnn.unroll`, ``seq_lengths``, ``vmap`` and the other combinators see an ordinary array:
  ``x: [*B, F + 1]`` with ``x[..., :F]`` the cell's input and ``x[..., F] > 0.5`` meaning "this step starts a
  new episode". At such a step the carry is replaced by ``cell.initial_carry(params, B)`` (learned or not, see
  :func:`jaxrnn.learned_initial_carry`) *before* the step reads ``x``, so one unroll over a stream of
  concatenated episodes equals running each episode separately from the initial carry. ``init(key, F + 1)``
  initialises the cell for ``F`` inputs. The cell's input transform is kept (the flag rides along as an extra
  column).

  Wrap randomness outside: ``dropout(reset_on(cell))`` is fine only without input dropout (it would drop the
  flag); a cell whose ``initial_carry`` needs a key (dropout wrappers) cannot be reset, since the fresh carry is
  built without one.

  Args:
    cell: the wrapped cell (vector inputs).
    name: the cell's name.

  Returns:
    A :class:`jaxrnn.Cell` with the wrapped cell's params and carry.

  Example:

    >>> import jax, jax.numpy as jnp, jaxrnn
    >>> cell = jaxrnn.reset_on(jaxrnn.gru(4))
    >>> params = cell.init(jax.random.key(0), 3 + 1)
    >>> xs = jaxrnn.with_reset_flags(jnp.ones((6, 3)), jnp.array([0, 0, 0, 1, 0, 0]))
    >>> _, hs = jaxrnn.unroll(cell, params, cell.initial_carry(params), xs)
    >>> bool(jnp.allclose(hs[3:], hs[:3]))                   # the second episode starts afresh
    True
  """
  if not isinstance(cell, Cell):
    raise TypeError(f"cell must be a jaxrnn.Cell, got {type(cell).__name__}")
  if cell.input_ndim != 1:
    raise ValueError(f"reset_on needs a cell with vector inputs, got input_ndim {cell.input_ndim}")
  name = name or f"reset_on({cell.name})"

  def init(key, input_size):
    input_size = _checks.positive_int("input_size", input_size)
    if input_size < 2:
      raise ValueError(f"input_size of {name} counts the reset flag (F + 1), so it must be >= 2, got {input_size}")
    return cell.init(key, input_size - 1)

  def split(x):
    x = _checks.floating("x", x)
    if x.ndim < 1 or x.shape[-1] < 2:
      raise ValueError(f"x of {name} must have shape [*B, F + 1] (inputs and a reset flag), got {x.shape}")
    return x[..., :-1], x[..., -1] > 0.5

  def reset(params, carry, flag):
    leaves = jax.tree.leaves(carry)
    for leaf in leaves:
      if tuple(leaf.shape[:flag.ndim]) != flag.shape:
        raise ValueError(f"carry leaves of {name} must have the batch shape {flag.shape} of x, got a leaf of "
                         f"shape {leaf.shape}")
    floating = [a.dtype for a in leaves if jnp.issubdtype(a.dtype, jnp.floating)]
    fresh = cell.initial_carry(params, flag.shape, floating[0] if floating else None)
    if jax.tree.structure(fresh) != jax.tree.structure(carry):
      raise ValueError(f"{name}: the carry given does not have the structure of cell.initial_carry(params, "
                       f"{flag.shape}); got {jax.tree.structure(carry)}, want {jax.tree.structure(fresh)}")
    return jax.tree.map(
        lambda f, c: jnp.where(sequences.expand_to(flag, c.ndim), f.astype(c.dtype), c), fresh, carry)

  def step(params, carry, x):
    x, flag = split(x)
    return cell.step(params, reset(params, carry, flag), x)

  input_transform = step_transformed = None
  if cell.input_transform is not None and cell.step_transformed is not None:
    def input_transform(params, xs):
      xs, flag = split(xs)
      u = cell.input_transform(params, xs)
      return jnp.concatenate([u, flag.astype(u.dtype)[..., None]], axis=-1)

    def step_transformed(params, carry, u):
      u, flag = u[..., :-1], u[..., -1] > 0.5
      return cell.step_transformed(params, reset(params, carry, flag), u)

  return Cell(init=init, initial_carry=cell.initial_carry, step=step, input_transform=input_transform,
              step_transformed=step_transformed, name=name)
