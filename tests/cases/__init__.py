"""Cell cases for the generic registry checks: every module here defines ``CASES: list[CellCase]``.

Add a module per cell family (e.g. ``peephole.py``); ``tests.registry`` collects them all.
"""
