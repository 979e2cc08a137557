"""Every metric against a value computed by hand on a tiny example."""
import numpy as np
import pytest
import scipy.sparse as sp

from mtl_classic.evaluation import metrics as M

# user 0 holds out items {1, 2}; user 1 holds out {3}; 5 items
TEST = sp.csr_matrix((np.ones(3), np.array([1, 2, 3]), np.array([0, 2, 3])), shape=(2, 5))
TOP = np.array([[3, 1, 0, 2], [0, 1, 2, 4]])  # user 1's item 3 is not recommended
N_REL = np.array([2, 1])


def test_hit_matrix():
    hits = M.hit_matrix(TOP, TEST)
    np.testing.assert_array_equal(hits, [[0, 1, 0, 1], [0, 0, 0, 0]])
    np.testing.assert_array_equal(M.hit_matrix(np.array([[-1, 1]]), TEST[:1]), [[False, True]])


def test_ranking_metrics_hand_computed():
    hits = M.hit_matrix(TOP, TEST)
    # user 0: hits at ranks 2 and 4 of R=2 held-out items; user 1: no hit
    np.testing.assert_allclose(M.recall_at_k(hits, N_REL, 2), [0.5, 0.0])
    np.testing.assert_allclose(M.recall_at_k(hits, N_REL, 4), [1.0, 0.0])
    np.testing.assert_allclose(M.hit_rate_at_k(hits, N_REL, 4), [1.0, 0.0])
    np.testing.assert_allclose(M.precision_at_k(hits, 2), [0.5, 0.0])
    np.testing.assert_allclose(M.precision_at_k(hits, 4), [0.5, 0.0])
    # NDCG@2 = (1/log2 3) / (1 + 1/log2 3) = 0.6309298 / 1.6309298
    np.testing.assert_allclose(M.ndcg_at_k(hits, N_REL, 2), [0.3868528072, 0.0])
    # NDCG@4 = (1/log2 3 + 1/log2 5) / (1 + 1/log2 3)
    np.testing.assert_allclose(M.ndcg_at_k(hits, N_REL, 4), [0.6509209298, 0.0])
    # AP@2 = (P@2 = 1/2) / min(2, 2); AP@4 = (1/2 + 2/4) / 2
    np.testing.assert_allclose(M.average_precision_at_k(hits, N_REL, 2), [0.25, 0.0])
    np.testing.assert_allclose(M.average_precision_at_k(hits, N_REL, 4), [0.5, 0.0])


def test_single_relevant_item_and_short_lists():
    hits = np.array([[False, False, True]])
    np.testing.assert_allclose(M.ndcg_at_k(hits, [1], 3), [0.5])  # 1 / log2(4)
    np.testing.assert_allclose(M.average_precision_at_k(hits, [1], 3), [1 / 3])
    # fewer ranked items than K: missing positions are misses; precision still divides by K
    np.testing.assert_allclose(M.precision_at_k(hits, 10), [0.1])
    np.testing.assert_allclose(M.recall_at_k(hits, [2], 10), [0.5])
    with pytest.raises(ValueError, match="k must be"):
        M.recall_at_k(hits, [1], 0)


def test_pointwise_hand_computed():
    assert M.rmse([1, 2, 4], [1.5, 2, 3]) == pytest.approx(np.sqrt(1.25 / 3))  # 0.6454972
    assert M.mae([1, 2, 4], [1.5, 2, 3]) == pytest.approx(0.5)
    # positives 0.35, 0.8 vs negatives 0.1, 0.4: 3 of 4 pairs ordered correctly
    assert M.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # -(ln 0.8 + ln 0.7) / 2
    assert M.log_loss([1, 0], [0.8, 0.3]) == pytest.approx(0.2899092476)
    assert np.isfinite(M.log_loss([1], [0.0]))  # clipped


def test_pointwise_errors():
    with pytest.raises(ValueError, match="both classes"):
        M.auc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="0 or 1"):
        M.log_loss([2, 0], [0.5, 0.5])
    with pytest.raises(ValueError, match="same length"):
        M.rmse([1, 2], [1])
    with pytest.raises(ValueError, match="finite"):
        M.mae([1, np.nan], [1, 2])
