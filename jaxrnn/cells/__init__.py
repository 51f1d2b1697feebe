"""Recurrent cells: one factory per file, each returning a :class:`jaxrnn.Cell`.

Common arguments
----------------
The cell factories share their initialisers, dtypes and precision: same names, same defaults, declared once in
:mod:`jaxrnn.cells.options` (a factory's ``**options`` are :class:`~jaxrnn.cells.options.RecurrentOptions`,
:class:`~jaxrnn.cells.options.DenseOptions`, :class:`~jaxrnn.cells.options.KernelOptions` or
:class:`~jaxrnn.cells.options.DtypeOptions`), where their meaning is written. Each factory's ``Args:`` says which
params its initialisers fill and where it departs from the defaults.
"""
