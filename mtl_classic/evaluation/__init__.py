"""Evaluation: metrics (pure functions) and the protocol of docs/MATH.md section 4."""
from . import metrics
from .metrics import (auc, average_precision_at_k, hit_matrix, hit_rate_at_k, log_loss, mae, ndcg_at_k,
                      precision_at_k, recall_at_k, rmse)
from .protocol import evaluate_pointwise, evaluate_ranking, evaluate_split

__all__ = ["metrics", "evaluate_ranking", "evaluate_pointwise", "evaluate_split", "hit_matrix", "recall_at_k",
           "hit_rate_at_k", "precision_at_k", "ndcg_at_k", "average_precision_at_k", "rmse", "mae", "auc",
           "log_loss"]
