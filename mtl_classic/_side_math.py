"""The cold-start solve of side matrices (docs/MATH.md, "cold start from side matrices"), numpy and scipy only: shared
by the estimator's fold-in and the serving path's :class:`~mtl_classic.inference.InferenceModel`, whose methods for
new items and new users known only by their side matrices live here (:class:`SideColdStart`)."""
import copy
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._ids import IdMap
from ._sparse import observation_pattern
from ._validation import check_finite_values
from .heads import logistic_bound

__all__ = ["SideTerm", "side_system", "entry_scores", "entry_weights", "side_entries", "rows_from_side", "item_feature_specs",
           "SideColdStart"]


@dataclass
class SideTerm:
    """One side matrix in a fit or a cold-start solve: ``matrix`` (csr, rows of the user or item side being solved,
    ``by_item`` says which), its column factors ``factors`` (n_columns x k) and column intercepts ``intercepts``
    (n_columns, float64; None: 0), both updated in place by :func:`mtl_classic.solver.side.update_side_factors` (the
    intercepts when ``fit_intercepts``); ``alpha`` > 0: confidence-weighted; ``observed_only``: its entries only
    (``logistic``: 0/1 labels under the logistic loss)."""

    name: str
    by_item: bool
    weight: float
    matrix: object
    factors: np.ndarray
    intercepts: np.ndarray = None
    fit_intercepts: bool = False
    alpha: float = 0.0
    observed_only: bool = False   # Task(kind="regression"): squared error on the entries only (missing is unknown)
    logistic: bool = False        # Task(kind="binary"): logistic loss on the entries only (0/1 labels)

    @classmethod
    def from_task(cls, task, matrix, factors, intercepts=None):
        """The term of side task ``task`` (its side, weight, kind, alpha and biases) on ``matrix``."""
        return cls(task.name, task.side == "item", float(task.weight), matrix, factors, intercepts,
                   bool(task.biases), task.resolved_side_alpha(), task.kind != "implicit", task.kind == "binary")

    @property
    def targets(self):
        """The whole-data part's targets: the values (``alpha`` 0), or 1 on every entry (``alpha`` > 0, whose
        confidence ``1 + alpha * value`` adds :func:`side_entries`)."""
        return observation_pattern(self.matrix) if self.alpha else self.matrix

    @property
    def n_columns(self):
        return self.matrix.shape[1]


def _whole_data_mass(terms):
    """sum_s lambda_s n_columns_s over the terms with a whole-data loss: the rows' extra penalty per unit of
    ``negative_regularization``."""
    return sum(s.weight * s.n_columns for s in terms if not s.observed_only)


def side_system(terms, k, negative_regularization):
    """The part side matrices add to every row's system: ``(sum_s lambda_s V_s^T V_s + negative_regularization *
    sum_s lambda_s n_columns_s I, sum_s lambda_s (t_s - c_s) V_s)``, the first k x k and the same for every row, the
    second (n_rows, k) (None without such terms), over the :class:`SideTerm` s with a whole-data loss (t_s: their
    :attr:`~SideTerm.targets`); float64."""
    A = np.zeros((k, k))
    rhs = None
    for s in terms:
        if s.observed_only:          # no whole-data part: its entries are :func:`side_entries`
            continue
        V = np.asarray(s.factors, dtype=np.float64)
        A += s.weight * (V.T @ V)
        part = s.weight * np.asarray(s.targets @ V)
        if s.intercepts is not None and np.any(s.intercepts):
            part = part - s.weight * (np.asarray(s.intercepts, dtype=np.float64) @ V)[None, :]
        rhs = part if rhs is None else rhs + part
    A[np.diag_indices(k)] += negative_regularization * _whole_data_mass(terms)
    return A, rhs


def entry_scores(matrix, F, V, c):
    """The scores ``f_row . v_col + c_col`` of every entry of the csr ``matrix`` (csr order), float64."""
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    return (np.einsum("ij,ij->i", np.asarray(F, dtype=np.float64)[rows],
                      np.asarray(V, dtype=np.float64)[matrix.indices]) + np.asarray(c)[matrix.indices])


def entry_weights(matrix, V, c, F, logistic):
    """Per entry of ``matrix`` (csr order) of an observed-only side matrix: its weight and working target, (1, value)
    for squared error, the logistic bound's (``heads.logistic_bound``) at the current scores ``F . v + c`` for 0/1
    labels."""
    if not logistic:
        return np.ones(matrix.nnz), matrix.data
    return logistic_bound(matrix.data, entry_scores(matrix, F, V, c))


def side_entries(terms, F=None):
    """The per-entry part of the :class:`SideTerm` s that have one (all on the side whose rows are ``F``):
    confidence-weighted ones (``alpha`` > 0: curvature and linear term ``lambda * alpha * value``, the entry's target
    being 1) and observed-only ones (curvature ``lambda a``, linear term ``lambda a (z - c_j)``: a = 1 and z the value
    for squared error, the logistic bound's weight and working target at the current scores for 0/1 labels).
    Returns (csr over the rows whose columns index the rows of the stacked column factors, curvatures and linear
    terms in the csr's entry order, the stacked column factors), or None without such terms."""
    mine = [s for s in terms if s.alpha or s.observed_only]
    if not mine:
        return None
    blocks, curv, lin, start = [], [], [], 0
    for s in mine:
        m = sp.csr_matrix(s.matrix, dtype=np.float64)
        m.sort_indices()
        a = m.data
        if s.observed_only:
            c = np.zeros(m.shape[1]) if s.intercepts is None else np.asarray(s.intercepts, dtype=np.float64)
            w, z = entry_weights(m, s.factors, c, F, s.logistic)
            curv.append(s.weight * w)
            lin.append(s.weight * w * (z - c[m.indices]))
        else:
            curv.append(s.weight * s.alpha * a)
            lin.append(s.weight * s.alpha * a)
        # the entries' positions (plus 1: no stored value is 0) carry them through the horizontal stacking
        blocks.append(sp.csr_matrix((np.arange(start + 1, start + m.nnz + 1, dtype=np.float64), m.indices,
                                     m.indptr), shape=m.shape))
        start += m.nnz
    C = sp.hstack(blocks, format="csr")
    C.sort_indices()
    position = np.rint(C.data).astype(np.int64) - 1
    return (C, np.concatenate(curv)[position], np.concatenate(lin)[position],
            np.vstack([np.asarray(s.factors, dtype=np.float64) for s in mine]))


#: most majorise-minimise steps of the cold-start solve of rows with binary side entries (it stops once no factor
#: moves by more than LOGISTIC_TOL, relative; the bound's steps converge linearly, slowly under a weak penalty)
LOGISTIC_STEPS = 1000
LOGISTIC_TOL = 1e-10
#: rows per batch of the cold-start solve with per-entry terms (bounds the (rows, k, k) systems' memory)
ROW_CHUNK = 256


def rows_from_side(terms, k, regularization, negative_regularization, prior_mean=None, n_rows=None):
    """Factors of rows known only by their side matrices, shrunk towards the fitted rows' mean.

    Parameters
    ----------
    terms : list of SideTerm
        The rows' side matrices (``matrix``: the rows' entries, n_rows x n_columns) with the fitted column factors
        and intercepts; their kinds as in the fit (whole-data values or confidences, observed-only values or 0/1
        labels, these through majorise-minimise steps of the logistic bound).
    k : int
    regularization, negative_regularization : float
        The model's row penalty rule: ``regularization`` plus ``negative_regularization`` times the rows' mass
        sum_s lambda_s n_columns_s (terms with a whole-data loss).
    prior_mean : array (k,) or None
        The centre of the penalty: the mean of the side's fitted rows (None: 0). A row with little side evidence
        then stays near the average row (the average user ranks items about as popularity does) instead of near
        the zero row (every score 0: no ranking at all).
    n_rows : int or None
        The number of rows; needed only without ``terms`` (rows given item features alone), which then all sit at
        ``prior_mean``.

    Returns
    -------
    ndarray (n_rows, k), float64
        ``(sum_s lambda_s V_s^T V_s + r I)^{-1} (sum_s lambda_s V_s^T (a_s - c_s) + r m)`` for every row (m:
        ``prior_mean``), with each row's entry terms (:func:`side_entries`) added to its own system.
    """
    if not terms:
        centre = np.zeros(k) if prior_mean is None else np.asarray(prior_mean, dtype=np.float64)
        return np.tile(centre, (int(n_rows), 1))
    n_rows = terms[0].matrix.shape[0]
    A, rhs = side_system(terms, k, negative_regularization)
    rhs = np.zeros((n_rows, k)) if rhs is None else rhs
    A[np.diag_indices(k)] += regularization
    if prior_mean is not None:   # the whole diagonal penalty r, pulling towards m instead of 0
        r = regularization + negative_regularization * _whole_data_mass(terms)
        rhs = rhs + r * np.asarray(prior_mean, dtype=np.float64)[None, :]
    if not any(s.alpha or s.observed_only for s in terms):
        return np.linalg.solve(A, rhs.T).T
    logistic = any(s.logistic for s in terms)
    out = (np.tile(np.asarray(prior_mean, dtype=np.float64), (n_rows, 1)) if prior_mean is not None
           else np.zeros_like(rhs))
    for _ in range(LOGISTIC_STEPS if logistic else 1):   # majorise-minimise steps of the logistic bound
        C, curv, lin, V = side_entries(terms, out)
        new = np.empty_like(rhs)
        for lo_row in range(0, n_rows, ROW_CHUNK):        # batched k x k solves, a chunk of rows at a time
            hi_row = min(n_rows, lo_row + ROW_CHUNK)
            lo, hi = C.indptr[lo_row], C.indptr[hi_row]
            rows = np.repeat(np.arange(hi_row - lo_row), np.diff(C.indptr[lo_row:hi_row + 1]))
            Vc = V[C.indices[lo:hi]]
            A_b = np.broadcast_to(A, (hi_row - lo_row, k, k)).copy()
            b_b = rhs[lo_row:hi_row].copy()
            np.add.at(A_b, rows, curv[lo:hi, None, None] * Vc[:, :, None] * Vc[:, None, :])
            np.add.at(b_b, rows, lin[lo:hi, None] * Vc)
            new[lo_row:hi_row] = np.linalg.solve(A_b, b_b[:, :, None])[:, :, 0]
        moved = np.max(np.abs(new - out)) if logistic else 0.0
        out = new
        if moved <= LOGISTIC_TOL * (1.0 + np.max(np.abs(out))):
            break
    return out


def _rows_matrix(name, rows, n, columns, kind, where, unknown):
    """``side_rows[name]`` as a float csr matrix (n, len(columns)): a matrix, or per row a list of column ids (value
    1; a repeated id adds up) or a dict {column id: value}."""
    if not sp.issparse(rows) and not isinstance(rows, np.ndarray):
        if len(rows) != n:
            raise ValueError(f"{where}: side_rows[{name!r}] has {len(rows)} rows for {n} {kind}s.")
        cols = [columns.index(np.asarray(list(r), dtype=object), unknown=unknown) for r in rows]
        values = [np.asarray([float(v) for v in r.values()]) if isinstance(r, dict) else np.ones(len(c))
                  for r, c in zip(rows, cols)]
        values, cols = [v[c >= 0] for v, c in zip(values, cols)], [c[c >= 0] for c in cols]
        rows = sp.csr_matrix((np.concatenate(values or [[]]), np.concatenate(cols or [[]]).astype(np.int64),
                              np.cumsum([0] + [len(c) for c in cols])), shape=(n, len(columns)))
        rows.sum_duplicates()
    if rows.shape != (n, len(columns)):
        raise ValueError(f"{where}: side_rows[{name!r}] must have shape {(n, len(columns))}; got {rows.shape}.")
    check_finite_values(sp.csr_matrix(rows).data, f"{where}: side_rows[{name!r}]")
    return sp.csr_matrix(rows, dtype=np.float64)


def _side_parts(model, kind, ids, known_ids, side_rows, where, unknown="raise"):
    """(a :class:`SideTerm` per side matrix named in ``side_rows`` (all of side ``kind``) on the new rows; per item
    feature named there, its values (n,)); column ids a side matrix does not know raise ``KeyError`` or
    (``unknown="ignore"``) are dropped."""
    if unknown not in ("raise", "ignore"):
        raise ValueError(f"{where}: unknown must be 'raise' or 'ignore'. Got {unknown!r}.")
    known = [i for i in ids if i in known_ids]
    if not ids or known or len(set(ids)) != len(ids):
        raise ValueError(f"{where}: {kind}_ids must be new, unique ids; {known[:5] or ids[:5]} are known or repeated.")
    if not isinstance(side_rows, dict) or not side_rows:
        raise ValueError(f"{where}: side_rows must be a non-empty dict {{side matrix: rows}}.")
    features = model.item_feature_columns if kind == "item" else {}
    parts, values = [], {}
    for name, rows in side_rows.items():
        if name in features:
            values[name] = _rows_matrix(name, rows, len(ids), features[name], kind, where, unknown).toarray().ravel()
            if name not in model.side:
                continue
        if name not in model.side or model.side[name][0] != kind:
            article = "an" if kind == "item" else "a"
            raise ValueError(f"{where}: {str(name)[:100]!r} is not {article} {kind} side matrix of the model "
                             f"({sorted([n for n, s in model.side.items() if s[0] == kind] + list(features))}).")
        _, weight, columns, V, c, alpha, observed, binary = model.side[name]
        parts.append(SideTerm(name, kind == "item", weight,
                              _rows_matrix(name, rows, len(ids), columns, kind, where, unknown), V, c,
                              alpha=alpha, observed_only=observed, logistic=binary))
    return parts, values


def item_feature_specs(model):
    """Per task of a fitted ``MultiTaskMF`` with an ``item_feature``: (that 1-column matrix's name, its column ids,
    the fitted weight gamma_t), what new items' feature values are read against (the fold-ins, the serving path, the
    saved artifacts)."""
    features = {t.name: t.item_feature for t in model.tasks_ if getattr(t, "item_feature", None)}
    if not features:
        return {}
    gammas = model.item_feature_weights_
    return {t: (f, model.data_.side[f].columns, gammas[t]) for t, f in features.items()}


class SideColdStart:
    """The :class:`~mtl_classic.inference.InferenceModel` methods for rows known only by their side matrices (a new
    movie by its genres, a new user by the tags or queries they wrote): the cold-start solve of
    :func:`rows_from_side` against the fitted column factors, centred on the fitted rows' mean."""

    @property
    def item_feature_columns(self):
        """{item-feature matrix name: its column ids} of the tasks' ``item_feature`` (new items give values there)."""
        return {name: columns for name, columns, _ in self.item_features.values()}

    def _new_rows(self, kind, ids, side_rows, where, unknown="raise", biases=False):
        """The new rows' factors (and with ``biases``, their item biases (T, n): gamma_t * a for the tasks whose
        item feature ``side_rows`` gives, 0 elsewhere); rows given item features only stay at the average row."""
        ids = list(ids)
        known_ids = self.item_ids if kind == "item" else self.user_ids
        fitted = np.asarray(self.params.item_factors if kind == "item" else self.params.user_factors,
                            dtype=np.float64)
        parts, values = _side_parts(self, kind, ids, known_ids, side_rows, where, unknown)
        q = rows_from_side(parts, self.factors, *self.side_penalty, prior_mean=fitted.mean(axis=0), n_rows=len(ids))
        if not biases:
            return q
        b = np.zeros((len(self.tasks), q.shape[0]))
        for task, (feature, _, gamma) in self.item_features.items():
            if feature in values:
                b[self.task_index[task]] = gamma * values[feature]
        return q, b

    def new_item_factors(self, item_ids, side_rows, where="InferenceModel.new_item_factors"):
        """Factors of new items known only by their item side matrices (docs/MATH.md, "cold start from side
        matrices").

        Parameters
        ----------
        item_ids : sequence of hashable
            External ids of the new items, none of them known.
        side_rows : dict of str -> sparse matrix (len(item_ids), n_columns) or list of rows
            Per item side matrix of the fit: the new items' rows, or per item a list of the column ids it has
            (value 1; a repeated id adds up) or a dict {column id: value}. A task's ``item_feature`` may be named
            too (its values: the items' bias terms gamma_t * a in :meth:`with_items` and :meth:`score_new_items`).

        Returns
        -------
        ndarray (len(item_ids), k)

        Raises
        ------
        ValueError
            Known or repeated ids, a name that is no item side matrix, rows of the wrong shape.
        KeyError
            Column ids the side matrix does not know.
        """
        return self._new_rows("item", item_ids, side_rows, where)

    def new_user_factors(self, user_ids, side_rows, where="InferenceModel.new_user_factors", unknown="raise"):
        """Factors of new users known only by their user side matrices (the tags or queries they wrote, their
        demographics); arguments, result and errors as :meth:`new_item_factors` with users in place of items, and
        ``unknown="ignore"`` drops column ids the side matrix does not know (a query nobody typed in training)."""
        return self._new_rows("user", user_ids, side_rows, where, unknown)

    def score_new_items(self, user, item_ids, side_rows, task=None):
        """Scores of new items known only by their side matrices for one known user (nothing stored): the score
        formula with the items' cold-start factors, their item features' terms (when given) and no cross-task
        evidence (nobody has interacted with them). Arguments as :meth:`new_item_factors`; ``user`` an external id.

        Returns
        -------
        ndarray (len(item_ids),)
            Raw scores (logits for logistic heads).
        """
        t = self.task_index[self._task(task, "InferenceModel.score_new_items")]
        u = int(self.user_ids.index([user])[0])
        q, b = self._new_rows("item", item_ids, side_rows, "InferenceModel.score_new_items", biases=True)
        p = self.params
        return (q @ (p.head_weights[t] * p.user_factors[u]).astype(np.float64) + float(p.intercepts[t])
                + float(p.user_biases[t, u]) + b[t])

    def with_items(self, item_ids, side_rows):
        """This model with new items known only by their side matrices (a new movie's genres, a new product's brand and
        category), folded in by the cold-start solve (:meth:`new_item_factors`, same arguments); they can then be
        recommended, predicted and filtered like the others (no one has interacted with them yet).

        Returns
        -------
        InferenceModel
        """
        q, b = self._new_rows("item", item_ids, side_rows, "InferenceModel.with_items", biases=True)
        ids = list(item_ids)
        p, n = self.params, len(ids)
        params = copy.copy(p)
        params.item_factors = np.vstack([p.item_factors, q.astype(p.item_factors.dtype)])
        params.item_biases = np.hstack([p.item_biases, b.astype(p.item_biases.dtype)])
        if p.cross_item_weights is not None:
            extra = np.zeros(p.cross_item_weights.shape[:2] + (n,))
            params.cross_item_weights = np.concatenate([p.cross_item_weights, extra], axis=2)
        patterns = {k: sp.hstack([m, sp.csr_matrix((m.shape[0], n))], format="csr") for k, m in self.patterns.items()}
        popularity = np.hstack([self.popularity, np.zeros((self.popularity.shape[0], n))])
        item_ids = IdMap(self.item_ids.to_list() + ids, kind="item")
        return type(self)(self.tasks, self.user_ids, item_ids, params, patterns, popularity,
                          default_task=self.default_task, cold=self.cold, calibrators=self.calibrators,
                          side=self.side, side_penalty=self.side_penalty, item_features=self.item_features)

    def users_from_side(self, user_ids, side_rows, unknown="raise"):
        """A model over new users known only by their user side matrices (a visitor's search queries, a new user's
        declared interests), folded in by the cold-start solve (:meth:`new_user_factors`, same arguments, ``unknown``
        too), sharing
        this model's item side: ``recommend``, ``predict`` and ``recommend_blended`` work on them. They have no
        interaction, so no item is filtered as seen, and their biases and per-user cross-task deviations are 0.
        Measure before serving it: on MovieLens, users folded in from their tags alone ranked below popularity
        (``benchmarks/side.py``, RESULTS.md).

        Returns
        -------
        InferenceModel
        """
        p = self.new_user_factors(user_ids, side_rows, "InferenceModel.users_from_side", unknown)
        n = p.shape[0]
        return self.with_users(p.astype(self.params.user_factors.dtype), np.zeros((len(self.tasks), n)), {},
                               user_ids=list(user_ids), cold=np.zeros(n, dtype=bool))
