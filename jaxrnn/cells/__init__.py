"""Recurrent cells: one factory per file, each returning a :class:`jaxrnn.Cell`."""
