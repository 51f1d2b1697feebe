"""``.. celldoc:: jaxrnn.lstm``: a cell factory's docstring for the cells gallery, without its argument list.

The gallery shows what the docstring says about the cell (summary, equations, paper, example) and links to the
API reference for the arguments; the docstring stays the one source of the equations. The Google sections
``Args:``, ``Returns:`` and ``Raises:`` are left out, the rest goes through napoleon as autodoc would do it.
"""

import importlib
import inspect

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.ext.napoleon.docstring import GoogleDocstring
from sphinx.util.docutils import SphinxDirective

LEFT_OUT = ("Args:", "Returns:", "Raises:")


def _resolve(name: str):
  module, _, attr = name.rpartition(".")
  return getattr(importlib.import_module(module), attr)


def without_sections(doc: str) -> str:
  """``doc`` less its ``Args:``/``Returns:``/``Raises:`` sections (a section ends at the next unindented line)."""
  out, skipping = [], False
  for line in doc.splitlines():
    if line.strip() in LEFT_OUT and not line.startswith(" "):
      skipping = True
      continue
    if skipping and line and not line.startswith(" "):
      skipping = False
    if not skipping:
      out.append(line)
  return "\n".join(out)


class CellDoc(SphinxDirective):
  required_arguments = 1
  has_content = False

  def run(self):
    name = self.arguments[0]
    try:
      obj = _resolve(name)
    except (ImportError, AttributeError) as e:
      raise self.error(f"celldoc: cannot import {name!r}: {e}") from e
    doc = inspect.getdoc(obj)
    if not doc:
      raise self.error(f"celldoc: {name} has no docstring")
    text = str(GoogleDocstring(without_sections(doc), self.config, self.env.app, "function", name, obj))
    text += f"\n\nArguments and return value: :func:`{name}`.\n"
    container = nodes.container(classes=["celldoc"])
    self.state.nested_parse(
      StringList(text.splitlines(), source=f"docstring of {name}"), self.content_offset, container
    )
    self.env.note_dependency(inspect.getsourcefile(obj))
    return [container]


def setup(app):
  app.add_directive("celldoc", CellDoc)
  return {"parallel_read_safe": True, "parallel_write_safe": True}
