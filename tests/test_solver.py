"""The alternating solver's math: row kernels vs the numpy reference, gradients vs finite differences,
monotone objective, equivalence with implicit's ALS, and the benefit of a dense auxiliary task."""
import numpy as np
import pytest
import scipy.sparse as sp

from mtl_classic.solver import als, kernels
from mtl_classic.solver.reference import solve_rows_reference

N_USERS, N_ITEMS = 40, 30


def _random_csr(rng, density, values):
    m = sp.random(N_USERS, N_ITEMS, density=density, random_state=rng, format="csr")
    m.data[:] = values(m.nnz)
    return m


def _pattern(m):
    return sp.csr_matrix((np.ones(m.nnz), m.indices, m.indptr), shape=m.shape)


def _task_mix(rng, mix, item_bias=False, negative_scale=None):
    """Tasks of several kinds on shared users/items, each fed by the others' patterns (``item_bias``: the implicit
    tasks carry whole-data item biases; ``negative_scale``: their negatives' item weights, None: uniform)."""
    mats = {
        "view": ("implicit", _random_csr(rng, 0.25, lambda n: rng.integers(1, 4, n).astype(float)), 1.0),
        "buy": ("implicit", _random_csr(rng, 0.05, lambda n: np.ones(n)), 0.7),
        "liked": ("binary", _random_csr(rng, 0.15, lambda n: rng.integers(0, 2, n).astype(float)), 1.0),
        "rating": ("regression", _random_csr(rng, 0.15, lambda n: rng.normal(3.0, 1.0, n)), 0.4),
    }
    names = [n for n in mats if n in mix]
    tasks = []
    for t, name in enumerate(names):
        kind, m, weight = mats[name]
        others = [b for b in range(len(names)) if b != t]
        tasks.append(als.prepare_task_arrays(
            name, kind, m, weight=weight, alpha=1.5, negative_weight=0.8, biases=kind != "implicit",
            evidence_negative_weight=0.3 if name == "buy" else None, item_bias=item_bias,
            cross_patterns=[_pattern(mats[names[b]][1]) for b in others], cross_task_indices=others,
            negative_scale=negative_scale))
    return tasks


def _random_params(tasks, rng, k=4):
    p = als.init_params(tasks, N_USERS, N_ITEMS, k, rng, scale=0.5, cross_per_item=True, cross_per_user=True)
    p.cross_item_weights[:] = rng.normal(scale=0.3, size=p.cross_item_weights.shape)
    p.cross_user_weights[:] = rng.normal(scale=0.3, size=p.cross_user_weights.shape)
    T = len(tasks)
    p.head_weights = rng.uniform(0.5, 1.5, (T, k))
    p.intercepts = rng.normal(size=T)
    for t, task in enumerate(tasks):
        if task.biases:
            p.user_biases[t] = rng.normal(scale=0.3, size=N_USERS)
            p.item_biases[t] = rng.normal(scale=0.3, size=N_ITEMS)
        elif task.item_bias:
            p.item_biases[t] = rng.normal(scale=0.3, size=N_ITEMS)
            # implicit tasks have no intercept
        else:
            p.intercepts[t] = 0.0
        p.cross_weights[t, task.cross_tasks] = rng.normal(scale=0.5, size=len(task.cross_tasks))
    return p


ALL = ("view", "buy", "liked", "rating")


@pytest.mark.parametrize("by_item", [False, True])
def test_row_kernels_match_numpy_reference(by_item):
    rng = np.random.default_rng(1)
    tasks = _task_mix(rng, ALL)
    p = _random_params(tasks, rng)
    n_rows, n_other = (N_ITEMS, N_USERS) if by_item else (N_USERS, N_ITEMS)
    stacked = als._Stacked(tasks, n_rows, n_other, by_item)
    curv, lin = als._stacked_terms(tasks, p)
    curv, lin = curv[stacked.order], lin[stacked.order]
    other = p.user_factors if by_item else p.item_factors
    X = kernels.scaled_copies(other, p.head_weights, np.empty((len(tasks) * other.shape[0], other.shape[1])))
    A0 = als._dense_term(tasks, p, other.T @ other, 0.05, by_item)
    expected = solve_rows_reference(stacked.indptr, stacked.indices, curv, lin, X, A0)
    out = np.zeros_like(expected)
    kernels.solve_rows_cholesky(stacked.indptr, stacked.indices, curv, lin, X, A0, out)
    np.testing.assert_allclose(out, expected, rtol=1e-8, atol=1e-10)
    out_cg = np.zeros_like(expected)
    kernels.solve_rows_cg(stacked.indptr, stacked.indices, curv, lin, X, A0, out_cg, 50)
    np.testing.assert_allclose(out_cg, expected, rtol=1e-6, atol=1e-8)
    out_pcg = np.random.default_rng(0).normal(size=expected.shape)  # any warm start
    als._solve_rows_preconditioned(stacked, curv, lin, other, p.head_weights, A0, out_pcg, 50)
    np.testing.assert_allclose(out_pcg, expected, rtol=1e-6, atol=1e-8)


def test_preconditioned_cg_solves_a_row_in_as_many_steps_as_its_entries_span():
    """Preconditioned by A0, a row's system is I + (its entries' part), whose eigenvalues differ from 1 only on
    the span of the row's entries: CG is exact after that many steps (plain CG on A0 + entries is not)."""
    rng = np.random.default_rng(4)
    n_users, n_items, k = 30, 25, 6
    counts = np.zeros((n_users, n_items))
    for u in range(n_users):  # user u has u % 3 + 1 items
        counts[u, rng.choice(n_items, u % 3 + 1, replace=False)] = rng.integers(1, 4, u % 3 + 1)
    tasks = [als.prepare_task_arrays("a", "implicit", sp.csr_matrix(counts), alpha=2.0)]
    p = als.init_params(tasks, n_users, n_items, k, rng, scale=1.0)
    stacked = als._Stacked(tasks, n_users, n_items, by_item=False)
    curv, lin = als._stacked_terms(tasks, p)
    curv, lin = curv[stacked.order], lin[stacked.order]
    Q = p.item_factors
    A0 = als._dense_term(tasks, p, Q.T @ Q, 0.05, False)
    X = kernels.scaled_copies(Q, p.head_weights, np.empty(Q.shape))
    exact = solve_rows_reference(stacked.indptr, stacked.indices, curv, lin, X, A0)
    for steps in (1, 2, 3):
        rows = np.flatnonzero(np.arange(n_users) % 3 + 1 <= steps)  # entries spanning <= steps directions
        out = np.zeros((n_users, k))
        als._solve_rows_preconditioned(stacked, curv, lin, Q, p.head_weights, A0, out, steps)
        np.testing.assert_allclose(out[rows], exact[rows], rtol=1e-7, atol=1e-9)
        plain = np.zeros((n_users, k))
        kernels.solve_rows_cg(stacked.indptr, stacked.indices, curv, lin, X, A0, plain, steps)
        assert np.abs(plain[rows] - exact[rows]).max() > 1e-3  # A0's own spectrum slows plain CG


def _fd_gradient(f, array, coords, eps=1e-6):
    out = []
    for idx in coords:
        old = array[idx]
        array[idx] = old + eps
        up = f()
        array[idx] = old - eps
        down = f()
        array[idx] = old
        out.append((up - down) / (2 * eps))
    return np.array(out)


@pytest.mark.parametrize("item_bias", [False, True])
@pytest.mark.parametrize("mix", [("view",), ("view", "buy"), ALL])
def test_row_and_head_gradients_match_finite_differences(mix, item_bias):
    """grad_P L = 2 (A_u p_u - b_u) and grad_w L = 2 (H w - g): the normal equations the solver uses are those of
    the exact objective (for the logistic head, the Jaakkola-Jordan bound is tangent to the loss), including the
    evidence-scaled penalty row_regularization * m_u ||p_u||^2 on the rows of observed-only tasks."""
    rng = np.random.default_rng(2)
    tasks = _task_mix(rng, mix, item_bias)
    p = _random_params(tasks, rng)
    cfg = als.SolverConfig(regularization=0.05, head_regularization=0.2, row_regularization=0.3,
                           bias_regularization=2.0, negative_regularization=0.01)
    f = lambda: als.objective(tasks, p, cfg)[0]

    for by_item in (False, True):
        side = p.item_factors if by_item else p.user_factors
        other = p.user_factors if by_item else p.item_factors
        n_rows, n_other = side.shape[0], other.shape[0]
        stacked = als._Stacked(tasks, n_rows, n_other, by_item)
        curv, lin = als._stacked_terms(tasks, p)
        curv, lin = curv[stacked.order], lin[stacked.order]
        X = kernels.scaled_copies(other, p.head_weights, np.empty((len(tasks) * other.shape[0], other.shape[1])))
        mass = sum(t.weight * t.negative_weight for t in tasks) * n_other
        reg = cfg.regularization + cfg.negative_regularization * mass
        A0 = als._dense_term(tasks, p, other.T @ other, reg, by_item)
        coords = [(r, j) for r in rng.choice(n_rows, 4, replace=False) for j in range(side.shape[1])]
        rhs = als._dense_rhs(tasks, p, by_item)
        rhs = np.zeros_like(side) if rhs is None else rhs
        assert (rhs != 0).any() == item_bias
        analytic = []
        for r, j in coords:
            sl = slice(stacked.indptr[r], stacked.indptr[r + 1])
            Xr = X[stacked.indices[sl]]
            A = A0 + (Xr * curv[sl, None]).T @ Xr + cfg.row_regularization * stacked.evidence[r] * np.eye(len(A0))
            b = Xr.T @ lin[sl] + rhs[r]
            analytic.append(2 * (A @ side[r] - b)[j])
        np.testing.assert_allclose(analytic, _fd_gradient(f, side, coords), rtol=1e-5, atol=1e-5)

    P, Q = p.user_factors, p.item_factors
    for t, task in enumerate(tasks):
        curv, lin = als._entry_terms(task, t, p)
        H, g = kernels.head_normal_equations(task.rows, task.cols, curv, lin, P, Q, 4)
        k = P.shape[1]
        head_reg = als.head_penalties(tasks, cfg)[t]
        if task.kind != "implicit":   # the evidence-scaled part: row_regularization per weighted observation
            assert head_reg == pytest.approx(cfg.head_regularization + cfg.row_regularization * task.weight
                                             * task.observed.sum())
        H = H + task.weight * task.negative_weight * (P.T @ P) * (Q.T @ Q) + head_reg * np.eye(k)
        g = g + head_reg
        if task.item_bias:
            g = g - task.weight * task.negative_weight * P.sum(axis=0) * (Q.T @ p.item_biases[t])
        analytic = 2 * (H @ p.head_weights[t] - g)
        coords = [(t, j) for j in range(k)]
        np.testing.assert_allclose(analytic, _fd_gradient(f, p.head_weights, coords), rtol=1e-5, atol=1e-5)
        # the matrix-free products agree with the assembled normal equations
        H_entries, g_entries = kernels.head_normal_equations(task.rows, task.cols, curv, lin, P, Q, 4)
        # the matrix-free products of the CG head step (all tasks at once, on the user-side stacked layout) agree
        # with the assembled normal equations
        lay = als._Stacked(tasks, P.shape[0], Q.shape[0], by_item=False)
        all_curv, all_lin = als._stacked_terms(tasks, p)
        V = rng.normal(size=p.head_weights.shape)
        T = len(tasks)
        scores = np.full(len(all_curv), np.nan)
        residual = kernels.head_products(lay.indptr, lay.indices, lay.order, T, all_curv, all_lin, P, Q,
                                         p.head_weights, True, 3, scores)
        np.testing.assert_allclose(residual[t], g_entries - H_entries @ p.head_weights[t], rtol=1e-9, atol=1e-12)
        bounds = np.concatenate([[0], np.cumsum([len(x.rows) for x in tasks])])
        np.testing.assert_allclose(scores[bounds[t]:bounds[t + 1]], als._factor_scores(task, t, p), rtol=1e-9,
                                   atol=1e-12)  # every entry's factor score, in the tasks' concatenated order
        minus_Hv = kernels.head_products(lay.indptr, lay.indices, lay.order, T, all_curv, all_lin, P, Q, V,
                                         False, 3, np.empty(len(all_curv)))
        np.testing.assert_allclose(-minus_Hv[t], H_entries @ V[t], rtol=1e-9, atol=1e-12)
        # the line search's pass: d^T H d's entries part and every entry's move along d
        moves = np.empty(len(task.rows))
        vHv = kernels.score_moves(task.rows, task.cols, curv, P, Q * V[t], moves)
        assert vHv == pytest.approx(V[t] @ H_entries @ V[t], rel=1e-9)
        np.testing.assert_allclose(moves, np.sum(P[task.rows] * Q[task.cols] * V[t], axis=1), rtol=1e-9,
                                   atol=1e-12)


@pytest.mark.parametrize("per_item", [False, True])
def test_offset_updates_are_exact_minimisers_for_squared_losses(per_item):
    rng = np.random.default_rng(3)
    tasks = _task_mix(rng, ("view", "buy", "rating"))
    p = _random_params(tasks, rng)
    if not per_item:
        p.cross_item_weights = p.cross_user_weights = None
    cfg = als.SolverConfig(regularization=0.05, cross_regularization=0.5)
    f = lambda: als.objective(tasks, p, cfg)[0]
    before = f()
    als._update_offsets(tasks, p, cfg)
    assert f() < before
    for t, task in enumerate(tasks):
        if per_item:
            # the last block updated for each task: the per-user weights of its last cross task
            b = task.cross_tasks[-1]
            coords = [(t, b, u) for u in range(0, N_USERS, 3)]
            np.testing.assert_allclose(_fd_gradient(f, p.cross_user_weights, coords), 0.0, atol=1e-5)
        else:
            coords = [(t, b) for b in task.cross_tasks]
            np.testing.assert_allclose(_fd_gradient(f, p.cross_weights, coords), 0.0, atol=1e-5)


@pytest.mark.parametrize("per", ["item", "user"])
def test_shared_cross_weight_and_its_deviations_are_minimised_jointly(per):
    """A squared-loss task with one cross feature updates beta and its per-item (or per-user) deviations in one
    closed-form block: afterwards the objective's gradient in all of them is zero, and the objective is no higher
    than after the two blocks one after the other."""
    rng = np.random.default_rng(9)
    tasks = _task_mix(rng, ("view", "buy"))
    p = _random_params(tasks, rng)
    if per == "item":
        p.cross_user_weights = None
    else:
        p.cross_item_weights = None
    dev = p.cross_item_weights if per == "item" else p.cross_user_weights
    n = N_ITEMS if per == "item" else N_USERS
    cfg = als.SolverConfig(regularization=0.05, cross_regularization=0.7)
    f = lambda: als.objective(tasks, p, cfg)[0]
    t = 1
    b = int(tasks[t].cross_tasks[0])
    start = (p.cross_weights.copy(), dev.copy())
    als._update_task_offsets(tasks[t], t, p, cfg)
    joint = f()
    np.testing.assert_allclose(_fd_gradient(f, p.cross_weights, [(t, b)]), 0.0, atol=1e-6)
    np.testing.assert_allclose(_fd_gradient(f, dev, [(t, b, i) for i in range(n)]), 0.0, atol=1e-6)
    # the same two blocks one after the other (the logistic path's order): not lower
    p.cross_weights[:], dev[:] = start
    task = tasks[t]
    f_t, o_t = als._factor_scores(task, t, p), als._offsets(task, t, p)
    blocks = [(0, 0, cfg.cross_regularization, p.cross_weights[t, b],
               lambda v: p.cross_weights.__setitem__((t, b), v[0])),
              (0, 2 if per == "item" else 1, cfg.cross_regularization, dev[t, b],
               lambda v: dev.__setitem__((t, b), v))]
    als._run_blocks(task, f_t, o_t, blocks)
    assert joint <= f() + 1e-9


@pytest.mark.parametrize("mix", [("view",), ("view", "buy"), ("liked",), ALL])
@pytest.mark.parametrize("solver", ["cg", "cholesky"])
@pytest.mark.parametrize("scaled", [False, True])
def test_objective_never_increases(mix, solver, scaled):
    """``scaled``: the evidence-scaled row penalty, a separate bias penalty, a fixed reference head, one private
    factor per task and whole-data item biases on the implicit tasks."""
    rng = np.random.default_rng(4)
    tasks = _task_mix(rng, mix, item_bias=scaled)
    mask = als.head_mask(len(tasks), 5, 1) if scaled else None
    p = als.init_params(tasks, N_USERS, N_ITEMS, 5, np.random.default_rng(0), scale=0.1, cross_per_item=True,
                        cross_per_user=True, mask=mask)
    extra = dict(row_regularization=0.05, bias_regularization=1.0, fixed_heads=(0,), head_mask=mask,
                 negative_regularization=0.002) if scaled else {}
    cfg = als.SolverConfig(regularization=0.05, cross_regularization=1.0, solver=solver, iterations=12, **extra)
    history, n_iter = als.fit_alternating(tasks, p, cfg)
    assert n_iter == 12 and len(history) == 13
    steps = np.diff(history)
    assert np.all(steps <= 1e-9 * np.abs(np.array(history[:-1]))), steps
    assert history[-1] < 0.9 * history[0]
    # the offsets the solver carries from sweep to sweep are the parameters' offsets
    assert history[-1] == pytest.approx(als.objective(tasks, p, cfg)[0], rel=1e-9)
    if scaled:  # the reference head never moves; the others do, on their own factors only
        np.testing.assert_array_equal(p.head_weights[0], mask[0])
        np.testing.assert_array_equal(p.head_weights[mask == 0], 0.0)
        if len(tasks) > 1:
            assert np.abs(p.head_weights[1:] - mask[1:]).max() > 1e-3


def test_head_mask_gives_each_task_its_own_block():
    mask = als.head_mask(3, 10, 2)
    np.testing.assert_array_equal(mask[:, :4], 1.0)
    np.testing.assert_array_equal(mask.sum(axis=0)[4:], 1.0)     # every private column has one owner
    np.testing.assert_array_equal(mask[1, 6:8], 1.0)
    np.testing.assert_array_equal(mask.sum(axis=1), 6.0)
    np.testing.assert_array_equal(als.head_mask(1, 4, 0), 1.0)


@pytest.mark.parametrize("mix", [("view",), ALL])
def test_whole_data_item_bias_update_is_exact_and_its_objective_matches_a_dense_sum(mix):
    """The item biases of implicit tasks act on every pair: the objective equals the dense sum over all pairs, and
    the closed-form update zeroes their finite-difference gradient."""
    rng = np.random.default_rng(7)
    tasks = _task_mix(rng, mix, item_bias=True)
    p = _random_params(tasks, rng)
    cfg = als.SolverConfig(regularization=0.05, bias_regularization=0.7, cross_regularization=0.5)
    f = lambda: als.objective(tasks, p, cfg)[0]
    t = 0
    task = tasks[t]
    # the dense sum: w0 (s + b_i)^2 on every pair, replaced by a (s + o - z)^2 on the task's entries
    S = (p.user_factors * p.head_weights[t]) @ p.item_factors.T + p.item_biases[t][None, :]
    dense = task.negative_weight * np.sum(S ** 2)
    o = als._offsets(task, t, p)
    s_e = S[task.rows, task.cols] - p.item_biases[t, task.cols] + o
    dense += np.sum(task.confidence * (s_e - task.target) ** 2 - task.negative_weight * S[task.rows, task.cols] ** 2)
    assert als.objective(tasks, p, cfg)[1][t] == pytest.approx(task.weight * dense, rel=1e-10)
    before = f()
    als._update_item_bias(task, t, p, cfg, als._factor_scores(task, t, p), o)
    np.testing.assert_allclose(o, als._offsets(task, t, p))   # the carried offsets follow the new biases
    assert f() <= before + 1e-9
    coords = [(t, i) for i in range(N_ITEMS)]
    np.testing.assert_allclose(_fd_gradient(f, p.item_biases, coords), 0.0, atol=1e-5)


def test_row_evidence_counts_weighted_observations_of_observed_only_tasks():
    rng = np.random.default_rng(6)
    tasks = _task_mix(rng, ALL)
    m_users = als.row_evidence(tasks, N_USERS, by_item=False)
    m_items = als.row_evidence(tasks, N_ITEMS, by_item=True)
    expect_u, expect_i = np.zeros(N_USERS), np.zeros(N_ITEMS)
    for task in tasks:
        if task.kind in ("binary", "regression"):
            for r, c in zip(task.rows[task.observed], task.cols[task.observed]):
                expect_u[r] += task.weight
                expect_i[c] += task.weight
    np.testing.assert_allclose(m_users, expect_u)
    np.testing.assert_allclose(m_items, expect_i)
    assert m_users.sum() > 0
    # implicit tasks alone add no evidence-scaled penalty
    assert not als.row_evidence(_task_mix(rng, ("view", "buy")), N_USERS, by_item=False).any()


@pytest.mark.parametrize("precondition", [True, False])
def test_observed_only_tasks_without_regularization_fall_back_to_plain_cg(precondition):
    """No implicit task and no regularization make A0 = 0, which has no Cholesky factor to precondition with: the
    rows then take plain CG, and the objective still never increases."""
    rng = np.random.default_rng(5)
    tasks = _task_mix(rng, ("liked", "rating"))
    p = als.init_params(tasks, N_USERS, N_ITEMS, 5, np.random.default_rng(0), scale=0.1)
    cfg = als.SolverConfig(regularization=0.0, cross_regularization=1.0, iterations=8, precondition=precondition)
    history, _ = als.fit_alternating(tasks, p, cfg)
    assert np.all(np.diff(history) <= 1e-9 * np.abs(np.array(history[:-1])))
    assert history[-1] < 0.9 * history[0]


def test_observation_pattern_keeps_explicit_zeros_merges_duplicates_and_leaves_input_alone():
    from mtl_classic._sparse import observation_pattern
    # row 0 holds an explicit zero at column 2 and a duplicated entry at column 1 (values 0 and 2); row 1 one entry
    m = sp.csr_matrix((np.array([0.0, 2.0, 0.0, 5.0]), np.array([1, 1, 2, 0]), np.array([0, 3, 4])), shape=(2, 3))
    before = (m.data.copy(), m.indices.copy(), m.indptr.copy())
    p = observation_pattern(m)
    np.testing.assert_array_equal(p.toarray(), [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    assert p.nnz == 3
    for a, b in zip(before, (m.data, m.indices, m.indptr)):
        np.testing.assert_array_equal(a, b)
    assert not np.shares_memory(p.indices, m.indices)


@pytest.mark.parametrize("by_item", [False, True])
def test_stacked_layout_sorts_every_row_by_augmented_column(by_item):
    """Row r of the stacked layout holds every task's entries on that row, ordered by col * T + t (a pair's tasks
    side by side, as the head kernel and the paired row kernel expect), and ``order`` points at those entries."""
    rng = np.random.default_rng(7)
    tasks = _task_mix(rng, ALL)
    T = len(tasks)
    n_rows, n_other = (N_ITEMS, N_USERS) if by_item else (N_USERS, N_ITEMS)
    lay = als._Stacked(tasks, n_rows, n_other, by_item)
    rows = np.concatenate([t.cols if by_item else t.rows for t in tasks])
    other = np.concatenate([t.rows if by_item else t.cols for t in tasks])
    task_of = np.repeat(np.arange(T), [len(t.rows) for t in tasks])
    keys = other * T + task_of
    expected = np.lexsort((keys, rows))
    np.testing.assert_array_equal(lay.order, expected)  # the keys are unique: one sorted order
    np.testing.assert_array_equal(lay.indices, keys[expected])
    np.testing.assert_array_equal(lay.indptr, np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))]))


def test_cg_tolerance_stops_rows_early_without_raising_their_objective():
    """With ``rtol`` a row's CG stops once its residual has fallen that far; each step it takes still lowers the
    row's quadratic, so the rows end between the warm start and the full ``cg_steps`` solve."""
    rng = np.random.default_rng(8)
    tasks = _task_mix(rng, ("view", "buy"))
    p = _random_params(tasks, rng)
    stacked = als._Stacked(tasks, N_USERS, N_ITEMS, False)
    curv, lin = als._stacked_terms(tasks, p)
    curv, lin = curv[stacked.order], lin[stacked.order]
    Q = p.item_factors
    A0 = als._dense_term(tasks, p, Q.T @ Q, 0.05, False)
    X = kernels.scaled_copies(Q, p.head_weights, np.empty((len(tasks) * N_ITEMS, Q.shape[1])))

    def row_objectives(out):  # 1/2 x^T A x - b^T x per row
        vals = []
        for u in range(N_USERS):
            sl = slice(stacked.indptr[u], stacked.indptr[u + 1])
            Xr = X[stacked.indices[sl]]
            A = A0 + (Xr * curv[sl, None]).T @ Xr
            vals.append(0.5 * out[u] @ A @ out[u] - (Xr.T @ lin[sl]) @ out[u])
        return np.array(vals)

    start = rng.normal(scale=0.3, size=(N_USERS, Q.shape[1]))
    results = {}
    for rtol in (0.0, 0.5, 1e9):
        out = start.copy()
        kernels.solve_rows_cg(stacked.indptr, stacked.indices, curv, lin, X, A0, out, 3, rtol)
        results[rtol] = row_objectives(out)
    before = row_objectives(start)
    assert np.all(results[1e9] <= before + 1e-12) and (results[1e9] < before - 1e-9).all()
    # a huge tolerance stops after the first step; 0 never stops early; 0.5 lies in between
    out1 = start.copy()
    kernels.solve_rows_cg(stacked.indptr, stacked.indices, curv, lin, X, A0, out1, 1, 0.0)
    np.testing.assert_allclose(results[1e9], row_objectives(out1), rtol=1e-12)
    assert np.all(results[0.0] <= results[0.5] + 1e-12) and np.all(results[0.5] <= results[1e9] + 1e-12)
    assert (results[0.0] < results[0.5] - 1e-9).any()  # some rows did stop early at 0.5


@pytest.mark.parametrize("by_item", [False, True])
def test_solve_side_the_public_seam_minimises_the_objective_over_one_side(by_item):
    """``als.solve_side`` (what fit's fold-ins and a distributed backend call): with the Cholesky solver, implicit
    tasks and no biases, one sweep is the exact minimiser over that side, so no perturbation of the solved factors
    lowers the objective and the other side is untouched."""
    rng = np.random.default_rng(11)
    tasks = _task_mix(rng, ("view", "buy"))
    p = als.init_params(tasks, N_USERS, N_ITEMS, 4, rng, scale=0.5)
    config = als.SolverConfig(regularization=0.05, solver="cholesky", fit_heads=False)
    other_before = (p.user_factors if by_item else p.item_factors).copy()
    before = als.objective(tasks, p, config)[0]
    als.solve_side(tasks, p, by_item, config, n_sweeps=1, n_jobs=1)
    after = als.objective(tasks, p, config)[0]
    assert after < before
    np.testing.assert_array_equal(p.user_factors if by_item else p.item_factors, other_before)
    side = p.item_factors if by_item else p.user_factors
    for _ in range(20):
        saved = side.copy()
        side += rng.normal(scale=1e-3, size=side.shape)
        assert als.objective(tasks, p, config)[0] >= after - 1e-9 * abs(after)
        side[:] = saved
