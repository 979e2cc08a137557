"""Guards written from a mutation check: each test recomputes a value independently of the code it checks (the
score formula, the seen-item filters, the objective's Gram and evidence-scaled penalty terms), so a break of one
formula that stays consistent with its neighbours still fails here."""
import numpy as np
import pytest
import scipy.sparse as sp

from mtl_classic.baselines import PopularityRecommender
from mtl_classic.inference import InferenceModel
from mtl_classic.model import MultiTaskMF
from mtl_classic.solver import als

from _synthetic import TASKS, four_task_data


# ---------------------------------------------------------------------------------------------------------------
# the score formula, written out densely from the fitted arrays
@pytest.fixture(scope="module")
def fitted():
    with pytest.warns(UserWarning):  # some cross features are dropped on this data (see dropped_cross_tasks_)
        # every term of the score on: per-item cross weights too (off by default)
        return MultiTaskMF(tasks=TASKS, factors=5, iterations=4, random_state=0, dtype="float64",
                           cross_regularization=1.0, cross_per_item=True).fit(four_task_data(seed=2))


def _dense_scores(m, t):
    """s_t(u, i) = p_u diag(w_t) q_i + b_t + bu_t[u] + bi_t[i] + sum_{b != t} (beta_tb + gamma_tb[i] + delta_tb[u])
    x_b(u, i), with x_b the 0/1 pattern of task b's training observations (explicit zeros count)."""
    data = m.data_
    S = (m.user_factors_ * m.head_weights_[t]) @ m.item_factors_.T
    S = S + m.intercepts_[t] + m.user_biases_[t][:, None] + m.item_biases_[t][None, :]
    for b, task in enumerate(m.tasks_):
        if b == t:
            continue
        obs = sp.csr_matrix(data.matrices[task.name])
        x = sp.csr_matrix((np.ones(obs.nnz), obs.indices, obs.indptr), shape=obs.shape).toarray() > 0
        w = m.cross_weights_[t, b] + m.cross_item_weights_[t, b][None, :] + m.cross_user_weights_[t, b][:, None]
        S = S + x * w
    return S


def test_fitted_model_exercises_every_term_of_the_score(fitted):
    """The formula test below only means something when every term is non-trivial."""
    m = fitted
    assert np.abs(m.head_weights_ - 1.0).max() > 1e-2        # learned heads differ from 1
    assert np.abs(m.item_biases_).max() > 1e-3 and np.abs(m.user_biases_).max() > 1e-3
    assert np.abs(m.cross_weights_).max() > 1e-3
    assert np.abs(m.cross_item_weights_).max() > 1e-4 and np.abs(m.cross_user_weights_).max() > 1e-4


def test_scores_and_raw_predictions_follow_the_written_out_formula(fitted):
    m = fitted
    inf = InferenceModel.from_model(m)
    users = np.arange(m.data_.n_users)
    rows, cols = np.divmod(np.arange(m.data_.n_users * m.data_.n_items), m.data_.n_items)
    for t, task in enumerate(m.tasks_):
        S = _dense_scores(m, t)
        np.testing.assert_allclose(m.score_items(task.name, users), S, rtol=1e-10, atol=1e-10, err_msg=task.name)
        np.testing.assert_allclose(inf.predict_indices(task.name, rows, cols, raw=True), S[rows, cols],
                                   rtol=1e-10, atol=1e-10, err_msg=task.name)
        p = m.predict_indices(task.name, rows, cols)
        expected = 1.0 / (1.0 + np.exp(-S[rows, cols])) if task.resolved_head() == "logistic" else S[rows, cols]
        np.testing.assert_allclose(p, expected, rtol=1e-10, atol=1e-12, err_msg=task.name)


def test_served_scores_are_the_scores_the_solver_fitted(fitted):
    """On every training entry, the raw score served equals the solver's factor score plus offsets (no train /
    serve skew between params.py (the score formula) and the solver)."""
    m = fitted
    arrays = m._task_arrays(m.tasks_, m.data_.matrices, m.cross_features_)
    params = m.fitted_params_
    inf = InferenceModel.from_model(m)
    for t, task in enumerate(arrays):
        solver_scores = als._factor_scores(task, t, params) + als._offsets(task, t, params)
        served = inf.predict_indices(task.name, task.rows, task.cols, raw=True)
        np.testing.assert_allclose(served, solver_scores, rtol=1e-10, atol=1e-10, err_msg=task.name)


# ---------------------------------------------------------------------------------------------------------------
# seen-item filters
def _seen(data, name):
    return {u: set(data.matrices[name][u].indices) for u in range(data.n_users)}


def _check_filtered(top_idx, scores, S, seen, where):
    """Returned items: no seen item, and exactly the best unseen items by score, best first."""
    finite = np.isfinite(scores)
    chosen = np.asarray(top_idx)[finite]
    assert len(chosen) > 0, where
    assert not set(chosen.tolist()) & seen, where
    unseen = np.array(sorted(set(range(len(S))) - seen))
    best = np.sort(S[unseen])[::-1][:len(chosen)]
    np.testing.assert_allclose(scores[finite], best, rtol=1e-12, err_msg=str(where))


def test_inference_recommend_drops_exactly_the_seen_items_with_unknown_users_in_the_batch(fitted):
    """A batch mixing known and unknown users (unknown='popular') filters the known users' seen items and ranks
    the rest by score; the unknown user gets candidates unfiltered."""
    m = fitted
    inf = InferenceModel.from_model(m)
    data = m.data_
    ids = data.user_map.ids
    for task in ("buy", "rating"):
        seen = _seen(data, task)
        known = [u for u in range(data.n_users) if seen[u]][:3]
        S = m.score_items(task, np.arange(data.n_users))
        for users in ([ids[u] for u in known], [ids[known[0]], "nobody", ids[known[1]], ids[known[2]]]):
            top, scores = inf.recommend(users, n=data.n_items, task=task, filter_seen=True, unknown="popular")
            rows = [r for r, u in enumerate(users) if u != "nobody"]
            for r, u in zip(rows, known):
                _check_filtered(data.item_map.index(list(top[r])), scores[r], S[u], seen[u], (task, u, len(users)))
            if len(users) == 4:
                assert np.isfinite(scores[1]).all()


def test_baseline_recommend_never_returns_seen_items():
    data = four_task_data(seed=4)
    model = PopularityRecommender().fit(data)
    for task in ("buy", "view"):
        seen = _seen(data, task)
        users = [u for u in range(data.n_users) if seen[u]][:10]
        S = model.score_items(task, np.arange(data.n_users))
        top, scores = model.recommend([data.user_map.ids[u] for u in users], n=data.n_items, task=task,
                                      filter_seen=True)
        for r, u in enumerate(users):
            _check_filtered(data.item_map.index(list(top[r])), scores[r], S[u], seen[u], (task, u))


# ---------------------------------------------------------------------------------------------------------------
# the objective, against a brute-force sum over every (user, item) pair
def _small_problem(n_users, n_items, seed):
    rng = np.random.default_rng(seed)
    view = sp.random(n_users, n_items, density=0.3, random_state=rng, format="csr")
    view.data[:] = rng.integers(1, 4, view.nnz)
    rating = sp.random(n_users, n_items, density=0.25, random_state=rng, format="csr")
    rating.data[:] = rng.normal(3.0, 1.0, rating.nnz)
    liked = sp.random(n_users, n_items, density=0.2, random_state=rng, format="csr")
    liked.data[:] = rng.integers(0, 2, liked.nnz)
    mats = {"view": ("implicit", view, 0.7), "rating": ("regression", rating, 0.4), "liked": ("binary", liked, 1.3)}
    tasks = [als.prepare_task_arrays(name, kind, m, weight=w, alpha=1.5, negative_weight=0.6,
                                     biases=kind != "implicit")
             for name, (kind, m, w) in mats.items()]
    p = als.init_params(tasks, n_users, n_items, 4, rng, scale=0.5)
    p.head_weights = rng.uniform(0.3, 1.7, p.head_weights.shape)
    for t, task in enumerate(tasks):
        if task.biases:
            p.intercepts[t] = rng.normal()
            p.user_biases[t] = rng.normal(scale=0.3, size=n_users)
            p.item_biases[t] = rng.normal(scale=0.3, size=n_items)
    return mats, tasks, p


@pytest.mark.parametrize("shape", [(13, 9), (11, 11)])
def test_objective_terms_match_a_brute_force_sum(shape):
    """Implicit loss: sum over ALL pairs of c_ui (y_ui - s_ui)^2 with c = 1 + alpha r observed, w0 elsewhere (the
    Gram part carries the unobserved pairs); the evidence-scaled penalty is
    row_regularization * (sum_u m_u ||p_u||^2 + sum_i m_i ||q_i||^2), m the weighted observation counts of the
    observed-only tasks (users and items counted separately, so a square problem catches a swap)."""
    n_users, n_items = shape
    mats, tasks, p = _small_problem(n_users, n_items, seed=n_users)
    P, Q = p.user_factors, p.item_factors
    cfg0 = als.SolverConfig(regularization=0.0, head_regularization=0.0, cross_regularization=0.0,
                            bias_regularization=0.0, row_regularization=0.0, negative_regularization=0.0)
    total0, per_task = als.objective(tasks, p, cfg0)

    expected = []
    for t, (name, (kind, m, w)) in enumerate(mats.items()):
        S = (P * p.head_weights[t]) @ Q.T + p.intercepts[t] + p.user_biases[t][:, None] + p.item_biases[t][None, :]
        R = m.toarray()
        observed = m.toarray() != 0  # the random matrices hold no explicit zeros except 'liked' (see below)
        if kind == "implicit":
            c = np.where(observed, 1.0 + 1.5 * R, 0.6)
            loss = np.sum(c * (observed - S) ** 2)
        elif kind == "regression":
            loss = np.sum((R - S)[observed] ** 2)
        else:
            coo = m.tocoo()
            s = S[coo.row, coo.col]
            loss = np.sum(np.logaddexp(0.0, s) - coo.data * s)
        expected.append(w * loss)
    np.testing.assert_allclose(per_task, expected, rtol=1e-10)
    assert total0 == pytest.approx(sum(expected), rel=1e-10)

    r = 0.37
    # heads fixed: their evidence-scaled penalty (row_regularization per observation, head_penalties) stays out
    cfg = als.SolverConfig(regularization=0.0, head_regularization=0.0, cross_regularization=0.0, fit_heads=False,
                           bias_regularization=0.0, row_regularization=r, negative_regularization=0.0)
    m_users, m_items = np.zeros(n_users), np.zeros(n_items)
    for name, (kind, m, w) in mats.items():
        if kind != "implicit":
            coo = m.tocoo()
            np.add.at(m_users, coo.row, w)
            np.add.at(m_items, coo.col, w)
    penalty = r * (m_users @ np.sum(P ** 2, axis=1) + m_items @ np.sum(Q ** 2, axis=1))
    assert penalty > 1e-3 * total0
    assert als.objective(tasks, p, cfg)[0] - total0 == pytest.approx(penalty, rel=1e-9)
    np.testing.assert_allclose(als.row_evidence(tasks, n_users, False), m_users)
    np.testing.assert_allclose(als.row_evidence(tasks, n_items, True), m_items)


def test_dense_term_is_the_hessian_of_the_whole_data_part():
    """A0 = reg I + sum_t lambda_t w0_t D_t G D_t, entry by entry: for a row p, p^T A0 p is the whole-data
    negative mass reg ||p||^2 + sum_t lambda_t w0_t sum_i (p diag(w_t) q_i)^2, summed over every item."""
    mats, tasks, p = _small_problem(10, 8, seed=5)
    Q = p.item_factors
    reg = 0.21
    A0 = als._dense_term(tasks, p, Q.T @ Q, reg, False)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.normal(size=Q.shape[1])
        brute = reg * x @ x
        for t, task in enumerate(tasks):
            if task.kind == "implicit":
                brute += task.weight * task.negative_weight * np.sum(((x * p.head_weights[t]) @ Q.T) ** 2)
        assert x @ A0 @ x == pytest.approx(brute, rel=1e-12)
