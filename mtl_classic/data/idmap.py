"""Mapping between external ids (any hashable: str, int, ...) and contiguous internal indices.

The class lives in :mod:`mtl_classic._ids` (numpy only, shared with the inference path); this module keeps the
import path ``mtl_classic.data.idmap.IdMap``.
"""
from .._ids import IdMap

__all__ = ["IdMap"]
