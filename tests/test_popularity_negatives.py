"""Popularity-weighted negatives (``negative_popularity``; docs/MATH.md): an unobserved pair (u, i) weighs w0 s_i.

The math is held as for uniform negatives: the objective equals its dense sum over all pairs, the row, head and
item-bias updates are exact minimisers (finite-difference gradients vanish), the objective never increases, s = 1
is the uniform fit, and with one implicit task the solver is a weighted ALS written out in numpy."""
import numpy as np
import pytest
import scipy.sparse as sp

from mtl_classic import MultiTaskMF, Task
from mtl_classic.solver import als, kernels
from mtl_classic.negatives import item_audiences, negative_popularity_scale

from test_solver import ALL, N_ITEMS, N_USERS, _fd_gradient, _random_csr, _random_params, _task_mix


def _tasks(rng, mix, scale, item_bias=False):
    """The tasks of ``test_solver._task_mix`` with the items' negative weights ``scale`` (None: uniform)."""
    return _task_mix(rng, mix, item_bias=item_bias, negative_scale=scale)


def _scale(seed=11):
    s = np.random.default_rng(seed).uniform(0.2, 3.0, N_ITEMS)
    return s / s.mean()


CFG = dict(regularization=0.05, head_regularization=0.2, row_regularization=0.3, bias_regularization=2.0,
           negative_regularization=0.01, cross_regularization=0.5)


def test_objective_is_the_dense_sum_with_item_weighted_negatives():
    """Every pair (u, i) off the task's entries costs w0 s_i (f + b_i)^2, its entries a_e (z - f - o)^2 (the
    unobserved entries, another task's evidence, keep their evidence weight); the Gram-matrix form of the solver
    equals that sum."""
    rng = np.random.default_rng(3)
    s = _scale()
    tasks = _tasks(rng, ("view", "buy"), s, item_bias=True)
    p = _random_params(tasks, rng)
    cfg = als.SolverConfig(**CFG)
    per_task = als.objective(tasks, p, cfg)[1]
    for t, task in enumerate(tasks):
        S = (p.user_factors * p.head_weights[t]) @ p.item_factors.T + p.item_biases[t][None, :]
        weight = task.negative_weight * np.broadcast_to(s, S.shape).copy()
        sq = S ** 2
        o = als._offsets(task, t, p)
        score_e = S[task.rows, task.cols] - p.item_biases[t, task.cols] + o
        dense = np.sum(weight * sq) + np.sum(task.confidence * (score_e - task.target) ** 2
                                             - weight[task.rows, task.cols] * sq[task.rows, task.cols])
        assert per_task[t] == pytest.approx(task.weight * dense, rel=1e-10)
        unobserved = ~task.observed
        if unobserved.any():   # the evidence pairs keep their own weight (the user saw those items)
            np.testing.assert_array_equal(task.confidence[unobserved], 0.3 if task.name == "buy" else 0.8)


@pytest.mark.parametrize("item_bias", [False, True])
@pytest.mark.parametrize("mix", [("view", "buy"), ("view", "buy", "rating")])
def test_row_head_and_item_bias_updates_are_exact_minimisers(mix, item_bias):
    """Exact (Cholesky) user rows, item rows (the per-row scaled dense part), heads and whole-data item biases each
    leave a zero finite-difference gradient in their own block (squared losses: a logistic task's step minimises
    its bound, not the loss)."""
    rng = np.random.default_rng(5)
    tasks = _tasks(rng, mix, _scale(), item_bias=item_bias)
    p = _random_params(tasks, rng)
    cfg = als.SolverConfig(solver="cholesky", **CFG)
    f = lambda: als.objective(tasks, p, cfg)[0]
    for by_item in (False, True):
        side = p.item_factors if by_item else p.user_factors
        before = f()
        stacked = als._Stacked(tasks, side.shape[0], (p.user_factors if by_item else p.item_factors).shape[0],
                               by_item)
        als.solve_rows(tasks, p, stacked, by_item, cfg)
        assert f() <= before + 1e-9
        coords = [(r, j) for r in rng.choice(side.shape[0], 5, replace=False) for j in range(side.shape[1])]
        np.testing.assert_allclose(_fd_gradient(f, side, coords), 0.0, atol=2e-5)
    als._update_heads(tasks, p, cfg, 2, als._Stacked(tasks, N_USERS, N_ITEMS, False))
    for t in range(len(tasks)):
        np.testing.assert_allclose(_fd_gradient(f, p.head_weights, [(t, j) for j in range(4)]), 0.0, atol=2e-5)
    if item_bias:
        t, task = 0, tasks[0]
        als._update_item_bias(task, t, p, cfg, als._factor_scores(task, t, p), als._offsets(task, t, p))
        np.testing.assert_allclose(_fd_gradient(f, p.item_biases, [(t, i) for i in range(N_ITEMS)]), 0.0,
                                   atol=2e-5)


def test_scaled_row_kernels_match_a_dense_solve():
    """Rows whose dense part is s_u A0 + A1 + d_u I: the CG kernel (run to convergence) and the Cholesky kernel
    both give the dense numpy solve."""
    rng = np.random.default_rng(8)
    n_rows, n_cols, k = 12, 9, 4
    m = sp.random(n_rows, n_cols, density=0.4, random_state=rng, format="csr")
    indptr, indices = m.indptr.astype(np.int64), m.indices.astype(np.int64)
    curv, lin = rng.uniform(0.1, 2.0, m.nnz), rng.normal(size=m.nnz)
    X = rng.normal(size=(n_cols, k))
    B = rng.normal(size=(k, k))
    A0, A1 = B @ B.T + 0.1 * np.eye(k), 0.3 * np.eye(k) + 0.05 * np.ones((k, k))
    scale, diag, rhs = rng.uniform(0.2, 3.0, n_rows), rng.uniform(0.0, 0.5, n_rows), rng.normal(size=(n_rows, k))
    expected = np.empty((n_rows, k))
    for r in range(n_rows):
        Xr = X[indices[indptr[r]:indptr[r + 1]]]
        c = curv[indptr[r]:indptr[r + 1]]
        A = scale[r] * A0 + A1 + diag[r] * np.eye(k) + (Xr * c[:, None]).T @ Xr
        expected[r] = np.linalg.solve(A, Xr.T @ lin[indptr[r]:indptr[r + 1]] + rhs[r])
    out = np.zeros((n_rows, k))
    kernels.solve_rows_cholesky(indptr, indices, curv, lin, X, A0, out, diag, rhs, scale=scale, A1=A1)
    np.testing.assert_allclose(out, expected, rtol=1e-9)
    out_cg = np.zeros((n_rows, k))
    kernels.solve_rows_cg(indptr, indices, curv, lin, X, A0, out_cg, 60, 0.0, diag=diag, rhs=rhs, scale=scale, A1=A1)
    np.testing.assert_allclose(out_cg, expected, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="explicit A0"):
        kernels.solve_rows_cg(indptr, indices, curv, lin, X, None, out_cg, 3, diag=diag)
    # the preconditioned basis: A0 = I there, scaled per row
    out_id = np.zeros((n_rows, k))
    kernels.solve_rows_cg(indptr, indices, curv, lin, X, None, out_id, 60, 0.0, rhs=rhs, scale=scale)
    for r in range(n_rows):
        Xr = X[indices[indptr[r]:indptr[r + 1]]]
        A = scale[r] * np.eye(k) + (Xr * curv[indptr[r]:indptr[r + 1], None]).T @ Xr
        np.testing.assert_allclose(out_id[r], np.linalg.solve(A, Xr.T @ lin[indptr[r]:indptr[r + 1]] + rhs[r]),
                                   rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
@pytest.mark.parametrize("mix", [("view",), ALL])
def test_objective_never_increases(mix, solver):
    rng = np.random.default_rng(4)
    tasks = _tasks(rng, mix, _scale(), item_bias=True)
    mask = als.head_mask(len(tasks), 5, 1) if len(tasks) > 1 else None
    p = als.init_params(tasks, N_USERS, N_ITEMS, 5, np.random.default_rng(0), scale=0.1, cross_per_item=True,
                        cross_per_user=True, mask=mask)
    cfg = als.SolverConfig(solver=solver, iterations=12, fixed_heads=(0,), head_mask=mask, **CFG)
    history, _ = als.fit_alternating(tasks, p, cfg)
    steps = np.diff(history)
    assert np.all(steps <= 1e-9 * np.abs(np.array(history[:-1]))), steps
    assert history[-1] < 0.9 * history[0]
    assert history[-1] == pytest.approx(als.objective(tasks, p, cfg)[0], rel=1e-9)


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_unit_weights_are_the_uniform_fit(solver):
    """s = 1 everywhere is the fit without popularity weighting (same sweeps; the item rows take the plain path,
    the uniform fit the preconditioned one, so CG agrees to its tolerance only)."""
    fits = []
    for scale in (None, np.ones(N_ITEMS)):
        tasks = _tasks(np.random.default_rng(4), ALL, scale, item_bias=True)
        p = als.init_params(tasks, N_USERS, N_ITEMS, 5, np.random.default_rng(0), scale=0.1)
        cfg = als.SolverConfig(solver=solver, iterations=6, cg_steps=20, cg_rtol=0.0,
                               **{**CFG, "row_regularization": 0.0})
        fits.append((als.fit_alternating(tasks, p, cfg)[0], p))
    (h0, p0), (h1, p1) = fits
    np.testing.assert_allclose(h1, h0, rtol=1e-7)
    np.testing.assert_allclose(p1.item_factors, p0.item_factors, rtol=1e-4, atol=1e-6)


def _weighted_als(R, s, P, Q, alpha, reg, sweeps):
    """He et al.'s ALS with item-weighted negatives, dense numpy: every pair weighs w0 s_i = s_i off the
    observations and 1 + alpha r on them (target 1 there, 0 elsewhere); item i's penalty is reg s_i (its
    negatives' mass; a user's is reg, the s_i averaging 1)."""
    D = R.toarray()
    W = np.where(D > 0, 1.0 + alpha * D, s[None, :])
    Y = (D > 0).astype(float)
    k = P.shape[1]
    for _ in range(sweeps):
        for u in range(P.shape[0]):
            P[u] = np.linalg.solve((Q * W[u][:, None]).T @ Q + reg * np.eye(k), Q.T @ (W[u] * Y[u]))
        for i in range(Q.shape[0]):
            Q[i] = np.linalg.solve((P * W[:, i][:, None]).T @ P + reg * s[i] * np.eye(k), P.T @ (W[:, i] * Y[:, i]))
    return P, Q


def test_one_implicit_task_is_weighted_als():
    """One implicit task, fixed head: the solver's sweeps are those of the dense weighted ALS."""
    rng = np.random.default_rng(6)
    R = _random_csr(rng, 0.15, lambda n: rng.integers(1, 4, n).astype(float))
    s = _scale(2)
    task = als.prepare_task_arrays("buy", "implicit", R, alpha=2.0, negative_weight=1.0, negative_scale=s)
    p = als.init_params([task], N_USERS, N_ITEMS, 3, np.random.default_rng(1), scale=0.3)
    P0, Q0 = p.user_factors.copy(), p.item_factors.copy()
    cfg = als.SolverConfig(regularization=0.1, negative_regularization=0.0, fit_heads=False, solver="cholesky",
                           iterations=4)
    als.fit_alternating([task], p, cfg)
    P, Q = _weighted_als(R, s, P0, Q0, 2.0, 0.1, 4)
    np.testing.assert_allclose(p.user_factors, P, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(p.item_factors, Q, rtol=1e-8, atol=1e-10)


def test_item_weights_from_audiences():
    views = sp.csr_matrix(np.array([[1, 0, 2], [1, 0, 0], [0, 0, 1]], dtype=float))
    buys = sp.csr_matrix(np.array([[0, 0, 0], [0, 1, 1], [0, 0, 0]], dtype=float))
    tasks = [Task("view"), Task("buy"), Task("rating", kind="regression")]
    audiences = item_audiences({"view": views, "buy": buys, "rating": buys * 5}, tasks, 3)
    np.testing.assert_array_equal(audiences, [2, 1, 3])      # distinct users over the implicit tasks
    s = negative_popularity_scale(audiences, 0.5)
    assert s.mean() == pytest.approx(1.0)
    np.testing.assert_allclose(s / s[1], np.sqrt(np.array([3, 2, 4]) / 2))
    assert negative_popularity_scale(audiences, 0.0) is None
    new = negative_popularity_scale(np.array([0.0]), 0.5, reference=audiences)   # a new item: the fit's mean
    assert new[0] == pytest.approx(1.0 / np.mean(np.sqrt(1 + audiences)))


def test_fold_in_of_users_and_items_reproduces_the_fitted_rows():
    """The fold-ins use the fit's item weights: a converged fit's users, folded in from their own interactions,
    and its items, folded in from theirs (the same audiences, hence the same s_i), land on their fitted rows."""
    from test_fold_in import _data, _rel_and_cos, _rows
    from mtl_classic.foldin import fold_in_users
    data = _data().subset_tasks(["view", "buy"])
    m = MultiTaskMF(tasks=[Task("view", weight=0.5), Task("buy")], factors=6, iterations=250, solver="cholesky",
                    cross_per_user=False, random_state=0, negative_popularity=0.75).fit(data)
    uniform = MultiTaskMF(**{**m.get_params(), "negative_popularity": 0.0, "iterations": 40}).fit(data)
    assert np.abs(m.item_factors_ - uniform.item_factors_).max() > 0.05   # the weights change the fit
    folded = fold_in_users(m, _rows(data, range(data.n_users), data.task_names))
    rel, cos = _rel_and_cos(folded.params.user_factors, m.user_factors_)
    assert rel.max() < 0.02 and cos.min() > 0.9999, (rel.max(), cos.min())
    q, _ = m.fold_in_items({t: data.matrices[t] for t in data.task_names}, cross_item_weights=m.cross_item_weights_)
    rel, cos = _rel_and_cos(q, m.item_factors_)
    assert rel.max() < 0.02 and cos.min() > 0.9999, (rel.max(), cos.min())


def test_negative_popularity_is_checked():
    from _synthetic import TASKS, four_task_data
    data = four_task_data(30, 20)
    with pytest.raises(ValueError, match="negative_popularity"):
        MultiTaskMF(tasks=TASKS, negative_popularity=-0.5).fit(data)
