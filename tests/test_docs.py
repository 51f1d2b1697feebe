"""The docs' sources (docs/), read without building them: every public name has an entry in the API reference,
and every internal link and README include points at something that exists.

``make docs`` builds the site with warnings as errors (an unresolved reference fails it there too); these checks
need no Sphinx, so the test suite runs them everywhere in well under a second.
"""

import pathlib
import re

import pytest

import jaxrnn

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()
PAGES = sorted(
  p
  for p in DOCS.rglob("*")
  if p.suffix in (".md", ".rst") and "_build" not in p.parts and p.parent != DOCS / "notebooks"
)

# `.. autofunction:: name` (rst) or ```{autofunction} name``` (MyST); `.. currentmodule:: m` sets the prefix.
DIRECTIVE = re.compile(r"(?:^\.\. |^```\{)(auto\w+|py:\w+|data|function|class|currentmodule)(?::: |\} )(\S+)", re.M)


def _documented():
  """Full names with an entry (autodoc directive or object description) in docs/api/, in the order given."""
  names = []
  for path in sorted((DOCS / "api").glob("*.rst")):
    module = None
    for kind, name in DIRECTIVE.findall(path.read_text()):
      if kind == "currentmodule":
        module = name
      elif kind in ("automodule", "module"):
        names.append(name)
      else:
        names.append(name if name.startswith("jaxrnn.") or module is None else f"{module}.{name}")
  return names


def test_every_public_name_has_an_entry_in_the_api_reference():
  documented = set(_documented())
  missing = [n for n in jaxrnn.__all__ if f"jaxrnn.{n}" not in documented]
  assert missing == [], f"not in docs/api/*.rst: {missing}"


def test_no_name_is_documented_twice():
  names = _documented()
  assert sorted({n for n in names if names.count(n) > 1}) == []


def test_every_page_is_in_a_toctree():
  """A page outside every toctree is unreachable from the navigation (Sphinx only warns)."""
  listed = set()
  for path in PAGES:
    text = path.read_text()
    for block in re.findall(r"```\{toctree\}\n(.*?)```|\.\. toctree::\n((?:\n|   .*\n)*)", text, re.S):
      for entry in "".join(block).splitlines():
        entry = entry.strip()
        if entry and not entry.startswith(":"):
          listed.add((path.parent / entry).relative_to(DOCS).as_posix())
  pages = {p.relative_to(DOCS).with_suffix("").as_posix() for p in PAGES} - {"index"}
  assert sorted(pages - listed) == []


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")  # [text](target), Markdown pages
DOC_ROLE = re.compile(r":doc:`([^`<]+)`")  # :doc:`../cells`, rst pages
INCLUDE = re.compile(r"```\{include\} (\S+)\n((?::[\w-]+: .*\n)*)```")


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_internal_links_resolve(path):
  text = path.read_text()
  broken = []
  for target in LINK.findall(text) + DOC_ROLE.findall(text):
    if "://" in target or target.startswith("mailto:"):
      continue
    resolved = (path.parent / target).resolve()
    candidates = [resolved, resolved.with_suffix(".md"), resolved.with_suffix(".rst")]
    if target.startswith("notebooks/") and target.endswith(".ipynb"):  # copied into docs/ by conf.py
      candidates.append(ROOT / target)
    if not any(c.is_file() for c in candidates):
      broken.append(target)
  assert broken == []


@pytest.mark.parametrize(
  "path", [p for p in PAGES if "{include}" in p.read_text()], ids=lambda p: p.relative_to(DOCS).as_posix()
)
def test_included_readme_sections_exist(path):
  """Pages include README sections between two headings: each marker is in the README, in order."""
  for target, options in INCLUDE.findall(path.read_text()):
    source = (path.parent / target).resolve()
    assert source.is_file(), target
    text = source.read_text()
    marks = dict(re.findall(r":([\w-]+): (.*)", options))
    start = 0
    if "start-after" in marks:
      mark = marks["start-after"].strip('"').replace("\\n", "\n")
      assert mark in text, f"{path.name}: {target} has no {mark!r}"
      start = text.index(mark) + len(mark)
    if "end-before" in marks:
      mark = marks["end-before"].strip('"').replace("\\n", "\n")
      assert mark in text[start:], f"{path.name}: {target} has no {mark!r} after the start"


# The ```python blocks written in docs/ itself (those the pages include from the README run in test_readme.py).
BLOCKS = [(path, block) for path in PAGES for block in re.findall(r"```python\n(.*?)```", path.read_text(), re.S)]


@pytest.mark.usefixtures("quick_compiles")
@pytest.mark.parametrize("path, block", BLOCKS, ids=[f"{p.relative_to(DOCS)}[{i}]" for i, (p, _) in enumerate(BLOCKS)])
def test_docs_python_block_runs(path, block):
  exec(compile(block, f"{path.relative_to(ROOT)} (python block)", "exec"), {"__name__": "__docs__"})


def test_docs_config_builds_offline():
  """No intersphinx (it downloads inventories) and MathJax served from the build."""
  conf = (DOCS / "conf.py").read_text()
  assert "sphinx.ext.intersphinx" not in conf
  assert '"mathjax_offline"' in conf
