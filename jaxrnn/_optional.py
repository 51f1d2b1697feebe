"""Optional dependencies: the error a missing one raises names the extra that installs it.

``import jaxrnn`` needs only jax and numpy. Flax (``jaxrnn.flax``), the trainer's optax, orbax-checkpoint, tqdm
and matplotlib (``jaxrnn.train``, the ``jaxrnn`` command) and torch (``jaxrnn.interop.torch``) are extras of the
package (``pip install 'jaxrnn[flax]'``, ``[train]``, ``[torch]``, ``[all]``). Where one is imported::

  try:
    import optax
  except ImportError as e:
    raise _optional.missing("jaxrnn.train", "optax", "train") from e
"""

from __future__ import annotations


def missing(user: str, package: str, extra: str) -> ImportError:
  """The ``ImportError`` for ``user`` (a module or function) that needs the pip package ``package``.

  Args:
    user: what needs the package, e.g. ``"jaxrnn.flax.linen"``.
    package: the pip distribution name, e.g. ``"orbax-checkpoint"``.
    extra: the jaxrnn extra that installs it, e.g. ``"train"``.

  Returns:
    ``ImportError("<user> needs <package>: pip install 'jaxrnn[<extra>]'")``, to raise ``from`` the original.

  >>> str(missing("jaxrnn.flax.linen", "flax", "flax"))
  "jaxrnn.flax.linen needs flax: pip install 'jaxrnn[flax]'"
  """
  return ImportError(f"{user} needs {package}: pip install 'jaxrnn[{extra}]'")
