"""Baselines that share the scoring surface of :class:`~mtl_classic.MultiTaskMF` (ARCHITECTURE.md).

Every baseline is a scikit-learn-style estimator: ``fit(data)`` returns self, ``score_items(task, user_indices)``
gives dense scores over all items, ``predict_indices`` scores pairs, and ``recommend`` (from
:class:`~mtl_classic.base.RecommenderMixin`) speaks external ids.
"""
from .als import ImplicitALSRecommender
from .clustering import ClusteringRecommender
from .popularity import PopularityRecommender
from .rule import AuxiliaryFirstRule
from .svm import LinearSVMRecommender

__all__ = ["PopularityRecommender", "AuxiliaryFirstRule", "ImplicitALSRecommender", "LinearSVMRecommender",
           "ClusteringRecommender"]
