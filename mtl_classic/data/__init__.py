"""Data layer: id maps, the multi-task container and train/test splits."""
from .idmap import IdMap
from .container import MultiTaskData
from .splits import Split, given_test_pairs, leave_last_out, random_holdout

__all__ = ["IdMap", "MultiTaskData", "Split", "leave_last_out", "random_holdout", "given_test_pairs"]
