"""One registry of cells that every generic check in ``test_generic.py`` runs over (as Haiku's descriptors).

A :class:`CellCase` says how to build a cell (for a given ``param_dtype``/``dtype``), the per-example input
shape, and an independent float64 NumPy reference of one step. Cases live in ``tests/cases/*.py``.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any, Callable, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class CellCase:
  """A cell under test.

  Attributes:
    name: the test id.
    make: ``make(param_dtype=..., dtype=...) -> Cell``.
    input_shape: the per-example input shape ``F`` (a tuple).
    reference: ``reference(params, carry, x) -> (carry, h)`` on NumPy float64 pytrees (params and carry with the
      same NamedTuple types as the cell's, leaves converted by ``np.asarray``): an independent implementation of
      the cell's equations, one example at a time. ``None`` only for cells checked against a peer instead.
    check_grads: run ``jax.test_util.check_grads`` (turn off for cells with discontinuities).
    bfloat16: run the bfloat16 dtype checks.
    rtol: tolerance of float32 comparisons between equivalent JAX computations.
    has_step: ``False`` for cells that only run whole sequences (a bidirectional layer: ``step`` raises and
      ``cell.sequence`` is the only path); the checks that call ``step`` directly are skipped for them.
    variant_of: the name of a case built by the same code with other hyperparameters (no bias, another gate
      variant or activation). A variant runs the checks that depend on the equations (float64 reference, dtypes,
      gradients, bad inputs); the structural checks (jit, vmap, batch axes, reverse, padding, recompilation) run
      once, on the case it is a variant of.
  """

  name: str
  make: Callable[..., Any]
  input_shape: Tuple[int, ...] = (3,)
  reference: Optional[Callable[..., Any]] = None
  check_grads: bool = True
  bfloat16: bool = True
  rtol: float = 1e-5
  has_step: bool = True
  variant_of: Optional[str] = None

  def __str__(self) -> str:
    return self.name


def all_cases() -> list[CellCase]:
  from tests import cases

  found = []
  for info in sorted(pkgutil.iter_modules(cases.__path__), key=lambda m: m.name):
    module = importlib.import_module(f"tests.cases.{info.name}")
    found.extend(getattr(module, "CASES", []))
  names = [c.name for c in found]
  duplicates = {n for n in names if names.count(n) > 1}
  if duplicates:
    raise ValueError(f"duplicate case names in tests/cases: {sorted(duplicates)}")
  full = {c.name for c in found if c.variant_of is None}
  orphans = {c.name: c.variant_of for c in found if c.variant_of is not None and c.variant_of not in full}
  if orphans:
    raise ValueError(f"variant_of must name a case that is not itself a variant: {orphans}")
  return found


def counting(cell: Any) -> Tuple[Any, list]:
  """``(cell, traces)``: ``cell`` scanning only its ``step`` (no input transform, no sequence path), a step that
  counts its traces in ``traces[0]``."""
  traces = [0]

  def step(params, carry, x):
    traces[0] += 1
    return cell.step(params, carry, x)

  return cell._replace(step=step, step_transformed=None, input_transform=None, sequence=None), traces


def randomize(params: Any, key: jax.Array, scale: float = 0.5) -> Any:
  """Replaces every floating leaf of ``params`` by ``scale * N(0, 1)`` (so biases are non-zero in references).

  The draws are NumPy's, seeded from ``key``'s data: no XLA program is compiled for them (see :func:`random_tree`).
  """
  return _fill(params, params, _seed(key), scale)


def _seed(key: Any) -> list[int]:
  """A NumPy seed from a PRNG key (typed or raw) or an int."""
  if isinstance(key, int):
    return [key]
  data = key if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else jax.random.key_data(key)
  return [int(v) for v in np.asarray(data).ravel()]


def _fill(template: Any, concrete: Any, seed: Any, scale: float) -> Any:
  """``template`` (a tree of arrays or shape structs) with its floating leaves drawn ``scale * N(0, 1)`` and the
  others taken from ``concrete`` (a tree of the same structure)."""
  leaves, treedef = jax.tree.flatten(template)
  values = jax.tree.leaves(concrete)
  rng = np.random.default_rng(seed)
  new = [
      jnp.asarray((scale * rng.standard_normal(leaf.shape, np.float32)).astype(leaf.dtype))
      if jnp.issubdtype(leaf.dtype, jnp.floating) else value
      for leaf, value in zip(leaves, values)
  ]
  return jax.tree.unflatten(treedef, new)


def random_tree(fn: Callable[..., Any], *args: Any, key: Any, scale: float = 0.5) -> Any:
  """``fn(*args)`` with every floating leaf replaced by ``scale * N(0, 1)`` (as :func:`randomize`).

  Shapes come from ``jax.eval_shape`` and the draws from NumPy, so nothing is compiled: the generic checks call
  this for every test, and compiling a dozen tiny random-number programs for each new shape was a third of their
  time. Only a tree with a non-floating leaf (a step counter, complex parameters) runs ``fn`` for those leaves.
  ``key``: a PRNG key or an int seed.
  """
  shapes = jax.eval_shape(fn, *args)
  floating = all(jnp.issubdtype(leaf.dtype, jnp.floating) for leaf in jax.tree.leaves(shapes))
  return _fill(shapes, shapes if floating else fn(*args), _seed(key), scale)


def random_params(cell: Any, input_size: Any, key: Any, scale: float = 0.5) -> Any:
  """Params of ``cell`` for ``input_size``, every floating leaf ``scale * N(0, 1)``, compiling nothing."""
  return random_tree(lambda k: cell.init(k, input_size), jax.random.key(0), key=key, scale=scale)


def random_carry(cell: Any, params: Any, batch_shape: Any, key: Any, dtype: Any = None, scale: float = 0.5) -> Any:
  """An initial carry of ``cell``, every floating leaf ``scale * N(0, 1)``, compiling nothing."""
  return random_tree(lambda p: cell.initial_carry(p, batch_shape, dtype), params, key=key, scale=scale)


def to_numpy(tree: Any) -> Any:
  return jax.tree.map(lambda a: np.asarray(a, dtype=np.float64) if jnp.issubdtype(a.dtype, jnp.floating)
                      else np.asarray(a), tree)


def reference_unroll(reference: Callable, params: Any, carry: Any, xs: np.ndarray):
  """Runs a NumPy step reference over ``xs: [T, *F]`` for one example: ``(carry, hs [T, ...])``."""
  hs = []
  for x in xs:
    carry, h = reference(params, carry, x)
    hs.append(np.asarray(h))
  return carry, np.stack(hs)
