"""Data layer: id maps, the multi-task container and train/test splits."""
from .idmap import IdMap
from .container import MultiTaskData

__all__ = ["IdMap", "MultiTaskData"]
