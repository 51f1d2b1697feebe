"""Reading traced programs in tests: the sub-programs of an equation (scan and checkpoint bodies, custom rules)."""


def subjaxprs(eqn):
  """The jaxprs in ``eqn``'s parameters (a scan's body, a checkpoint's, a custom rule's), closed ones opened."""
  for value in eqn.params.values():
    for v in (value if isinstance(value, (tuple, list)) else (value,)):
      if hasattr(v, "eqns"):
        yield v
      elif hasattr(v, "jaxpr") and hasattr(v.jaxpr, "eqns"):
        yield v.jaxpr


def primitives(jaxpr):
  """The names of every primitive in ``jaxpr``, sub-programs included."""
  for eqn in jaxpr.eqns:
    yield eqn.primitive.name
    for sub in subjaxprs(eqn):
      yield from primitives(sub)
