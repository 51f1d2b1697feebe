"""Flax adapters for jaxrnn cells: ``jaxrnn.flax.linen``, ``jaxrnn.flax.nnx`` and ``jaxrnn.flax.convert``.

This subpackage is imported only on demand (``import jaxrnn.flax.linen``); the core ``jaxrnn`` package never
imports Flax. Every module here uses absolute imports, so ``import flax`` inside it is the real Flax.
"""
