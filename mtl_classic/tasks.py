"""Task descriptions: what one behaviour's observations mean and how its head is trained.

A :class:`Task` is configuration only (no learned state). See docs/MATH.md section 1 for the kinds.
:func:`resolve_cross_tasks` decides which tasks feed each head's cross-task features.
"""
from dataclasses import dataclass, asdict, replace
import copy
import numbers

import numpy as np

from ._sparse import same_pairs
from ._validation import check_finite_values

KINDS = ("implicit", "binary", "regression")
HEADS = ("linear", "logistic")


@dataclass
class Task:
    """One behaviour to model.

    Parameters
    ----------
    name : str
        Name of the task; must match a task in the :class:`~mtl_classic.MultiTaskData`.
    kind : {"implicit", "binary", "regression"}
        ``implicit``: observed entries are positives (values are counts, confidence ``1 + alpha * count``),
        every unobserved pair is a weak negative with weight ``negative_weight`` (whole-data, no sampling).
        ``binary``: observed entries are labels in {0, 1}; unobserved pairs are ignored; logistic head.
        ``regression``: observed entries are real values; unobserved pairs are ignored; linear head.
    weight : float or "auto", default="auto"
        Task weight lambda_t in the joint objective (docs/MATH.md section 1). Must be > 0; a task you want to leave out
        should be left out of ``tasks=``. ``"auto"`` is 1 for a user x item task; for a side task (``side=``) it is
        :func:`auto_side_weight`: the side matrix's own mass (squared values; confidences for ``alpha``; labels for
        binary) is weighted to ``AUTO_SIDE_MASS`` (0.02%) of the user x item tasks' mass, whatever the units of its
        values. Chosen on validation splits (``benchmarks/side_weights.py``, table in
        ``benchmarks/results/side_weights.md``): warm ranking is level at every weight from 1 to 0.001, and the cold
        start from side rows (new movies from genres, new users from tags, planted attributes) is best at 0.01 to
        0.001, where the rule lands. The fitted value is in ``MultiTaskMF.side_tasks_``.
    head : {"linear", "logistic"} or None, default=None
        None picks the kind's head: linear for implicit and regression, logistic for binary. Implicit tasks support
        only the linear head (the whole-data squared loss of Hu, Koren and Volinsky).
    alpha : float or "auto", default="auto"
        Confidence scaling for implicit tasks: confidence = 1 + alpha * count. ``"auto"`` derives it from the data
        (:func:`auto_alpha`): the observations' extra confidence ``alpha * sum(counts)`` then totals
        ``AUTO_CONFIDENCE_MASS`` (2%) of the task's whole-data negative mass ``negative_weight * n_users *
        n_items``, so that every implicit task's positives carry the same mass against its negatives, however dense
        or sparse it is (a task with 0.4% of the pairs gets alpha 5, one with 0.04% alpha 50). The fitted value is
        in ``MultiTaskMF.tasks_``. Chosen leave-one-dataset-out on validation splits (``benchmarks/defaults.py``,
        table in ``benchmarks/results/at-b90376e/defaults.md``): the rule, at one mass or another (0.01-0.03), was
        handed to every dataset left out; 0.02 has the best mean. It costs Beibei's validation 1.4% against
        ``alpha=1`` and gains on the others.
    negative_weight : float, default=1.0
        Weight ``w0`` of every unobserved pair of an implicit task.
    evidence_negative_weight : float or None, default=None
        Implicit tasks: weight of the unobserved pairs of this task that one of its ``cross_tasks`` observed
        (e.g. carted but not bought). Such a pair is a weaker negative than a pair with no evidence at all: the
        user may still buy. None means ``0.3 * negative_weight``: on the validation splits of MovieLens, Beibei and
        Tmall it was level with 0.1 and with ``negative_weight`` on the first two, and 6% above ``negative_weight``
        on Tmall (``python benchmarks/defaults.py --sets evidence``, table in
        ``benchmarks/results/evidence/defaults.md``).
    biases : bool or None, default=None
        Per-task user and item biases. None means True for binary and regression tasks and False for implicit tasks
        (implicit tasks do not support biases: their zero targets on all unobserved pairs make the factors carry
        popularity).
    item_bias : bool or None, default=None
        Implicit tasks: an item bias ``bi_t[i]`` on every pair, observed or not (the popularity term), learned in
        closed form through the Gram machinery at O(nnz) per sweep. With it, "rank by popularity" is a point of the
        model family. None means False (``benchmarks/defaults.py`` holds the validation table).
        Binary and regression tasks use ``biases`` instead.
    cross_tasks : "all", list of str or None, default="all"
        Which other tasks' observed training entries feed this head as features (docs/MATH.md section 1,
        "cross-task evidence"). ``x_b(u, i)`` is 1 where task b has an observation for (u, i) and 0 elsewhere.
        None disables the feature. Tasks that carry no evidence about this task's unobserved pairs are left out
        at fit time and reported in ``MultiTaskMF.dropped_cross_tasks_``: those recording the same pairs, and for
        an implicit task those whose pairs all lie inside its own.
    side : {None, "user", "item"}, default=None
        None: a task over the data's user x item pairs. ``"user"`` / ``"item"``: a side matrix of the data
        (``MultiTaskData.with_side``), a user x query or item x attribute matrix that shares the user or item factors
        and has column factors of its own (docs/MATH.md, "side matrices"). Its loss is the squared error on every pair
        with weight ``weight`` (the matrix's values as targets, 0 where it has no entry); negative_weight,
        item_bias and cross features keep their defaults (they do not apply); it feeds no other task's cross
        features. ``biases=True`` gives its columns intercepts c (an
        item-level target "sales of item i" is then ``q_i . v + c``, a 1-column side matrix). A number for
        ``alpha`` makes it implicit-style instead: each entry is a target 1 with confidence ``1 + alpha * value``
        (a user's query counts), the other pairs targets 0 with weight 1 (docs/MATH.md, "side matrices").
        ``kind="regression"`` fits the entries' values only (a missing entry is unknown, not 0: a user's age, an
        item's sales where known), ``kind="binary"`` its 0/1 labels under the logistic loss (an item "on sale"
        flag, known for some items); both take intercepts under ``biases=True``.
    item_feature : str or None, default=None
        Implicit tasks: the name of a 1-column item side matrix of the data (``MultiTaskData.with_side``), e.g.
        each item's log sales, read as a head feature: the task's score gains ``gamma_t * a_i`` on every pair, one
        learned weight gamma_t (``item_feature_weights_``). It is the whole-data item bias constrained to
        ``gamma_t * a`` (docs/MATH.md, "item features"), so it excludes ``item_bias=True``. The side matrix need
        not be modelled as a side task; items it does not list have value 0. New items bring their values to
        ``fold_in_items`` and ``InferenceModel.with_items`` / ``score_new_items`` under the same name.
    """

    name: str
    kind: str = "implicit"
    weight: object = "auto"
    head: str = None
    alpha: object = "auto"
    negative_weight: float = 1.0
    evidence_negative_weight: float = None
    biases: bool = None
    cross_tasks: object = "all"
    item_bias: bool = None
    side: str = None
    item_feature: str = None

    # ---- helpers used by the estimator; they never mutate the task ----
    def resolved_head(self):
        """The head actually used (``head`` or the kind's default)."""
        if self.head is not None:
            return self.head
        return "logistic" if self.kind == "binary" else "linear"

    def resolved_evidence_negative_weight(self):
        """Weight of unobserved pairs that another task observed (implicit tasks)."""
        if self.evidence_negative_weight is None:
            return 0.3 * float(self.negative_weight)
        return float(self.evidence_negative_weight)

    def resolved_biases(self):
        """Whether the task has user/item biases and an intercept."""
        if self.biases is not None:
            return bool(self.biases)
        return self.kind != "implicit"

    def resolved_side_alpha(self):
        """A side task's confidence scale: 0 (``alpha="auto"``: its values are the targets, every pair weighs 1) or
        alpha (its entries are targets 1 with confidence ``1 + alpha * value``, as an implicit task's)."""
        return 0.0 if isinstance(self.alpha, str) else float(self.alpha)

    def resolved_item_bias(self):
        """Whether an implicit task has whole-data item biases (free, or ``gamma * item_feature``)."""
        return self.kind == "implicit" and (bool(self.item_bias) or self.item_feature is not None)

    def check_values(self, values, what=None):
        """Raise ``ValueError`` when observed ``values`` cannot be this task's: NaN, infinite or overflowing values,
        negative counts for an implicit task, labels outside {0, 1} for a binary task. ``what`` names the source in the
        message (default: the task)."""
        what = what or f"task {self.name!r}"
        values = np.asarray(values)
        check_finite_values(values, what)
        if self.kind == "implicit" and np.any(values < 0):
            raise ValueError(f"{what} is implicit but has {int(np.sum(values < 0))} negative values; implicit "
                             f"values are counts (confidence 1 + alpha * count) and must be >= 0.")
        if self.kind == "binary":
            bad = ~np.isin(values, (0.0, 1.0))
            if bad.any():
                raise ValueError(f"{what} is binary but has {int(bad.sum())} labels outside {{0, 1}} "
                                 f"(first: {values[bad][0]!r}).")

    def validate(self, where="tasks"):
        """Raise ``ValueError`` naming the task and the field when the task is inconsistent."""
        label = f"{where}: task {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"{where}: every task needs a non-empty string name. Got {self.name!r}.")
        if self.kind not in KINDS:
            raise ValueError(f"{label} has kind {self.kind!r}; expected one of {KINDS}.")
        if self.head is not None and self.head not in HEADS:
            raise ValueError(f"{label} has head {self.head!r}; expected one of {HEADS} or None.")
        head = self.resolved_head()
        if self.kind == "implicit" and head != "linear":
            raise ValueError(f"{label}: implicit tasks support only the linear head (whole-data squared loss); "
                             f"got head={self.head!r}. Use kind='binary' for observed 0/1 labels.")
        if self.kind == "regression" and head != "linear":
            raise ValueError(f"{label}: regression tasks need the linear head; got head={self.head!r}.")
        if self.kind == "binary" and head != "logistic":
            raise ValueError(f"{label}: binary tasks need the logistic head; got head={self.head!r}.")
        for attr, positive in (("weight", True), ("alpha", False), ("negative_weight", True)):
            value = getattr(self, attr)
            if attr in ("weight", "alpha") and isinstance(value, str):
                if value != "auto":
                    bound = "> 0" if positive else ">= 0"
                    raise ValueError(f"{label}: {attr} must be a finite number {bound} or 'auto'. Got {value!r}.")
                continue
            if (not isinstance(value, numbers.Real) or isinstance(value, bool) or value != value
                    or value in (float("inf"), float("-inf"))):
                raise ValueError(f"{label}: {attr} must be a finite number. Got {value!r}.")
            if positive and value <= 0:
                raise ValueError(f"{label}: {attr} must be > 0. Got {value!r}.")
            if not positive and value < 0:
                raise ValueError(f"{label}: {attr} must be >= 0. Got {value!r}.")
        env = self.evidence_negative_weight
        if env is not None and (not isinstance(env, numbers.Real) or isinstance(env, bool) or not env >= 0
                                or env == float("inf")):
            raise ValueError(f"{label}: evidence_negative_weight must be a finite number >= 0 or None. Got {env!r}.")
        if self.item_bias is not None and not isinstance(self.item_bias, (bool, np.bool_)):
            raise ValueError(f"{label}: item_bias must be True, False or None. Got {self.item_bias!r}.")
        if self.item_bias and self.kind != "implicit":
            raise ValueError(f"{label}: item_bias is for implicit tasks; {self.kind} tasks have biases=True.")
        if self.kind == "implicit" and self.biases and self.side is None:
            raise ValueError(f"{label}: implicit tasks do not support biases; got biases=True (item_bias=True gives "
                             f"them a whole-data item bias).")
        if self.item_feature is not None:
            if not isinstance(self.item_feature, str) or not self.item_feature:
                raise ValueError(f"{label}: item_feature must be the name of a 1-column item side matrix or None. "
                                 f"Got {self.item_feature!r}.")
            if self.kind != "implicit" or self.side is not None or self.item_bias:
                raise ValueError(f"{label}: item_feature is for implicit user x item tasks without item_bias=True "
                                 f"(binary and regression tasks have free item biases, biases=True).")
        if self.side is not None:
            self._validate_side(label)
        ct = self.cross_tasks
        if not (ct is None or ct == "all" or (isinstance(ct, (list, tuple)) and all(isinstance(c, str) for c in ct))):
            raise ValueError(f"{label}: cross_tasks must be 'all', None or a list of task names. Got {ct!r}.")
        return self

    def _validate_side(self, label):
        if self.side not in ("user", "item"):
            raise ValueError(f"{label}: side must be None, 'user' or 'item'. Got {self.side!r}.")
        fixed = {"head": None, "negative_weight": 1.0, "evidence_negative_weight": None, "item_bias": None}
        if self.kind != "implicit" and self.resolved_side_alpha():
            raise ValueError(f"{label}: alpha (confidences) is for implicit side tasks; a {self.kind} side task "
                             f"fits its entries' values or labels.")
        if self.biases not in (None, False, True):
            raise ValueError(f"{label}: biases must be None, False or True (column intercepts). Got {self.biases!r}.")
        if self.resolved_side_alpha() and self.biases:
            raise ValueError(f"{label}: a side matrix with confidences (alpha > 0) has no column intercepts; give "
                             f"alpha or biases=True, not both.")
        changed = [name for name, value in fixed.items() if getattr(self, name) != value]
        if changed:
            raise ValueError(f"{label}: {changed} do not apply to a side task ({self.side} side) and must keep their "
                             f"defaults.")

    def to_dict(self):
        """JSON-able dict of the configuration (for persistence)."""
        d = asdict(self)
        if isinstance(d["cross_tasks"], tuple):
            d["cross_tasks"] = list(d["cross_tasks"])
        return d

    @classmethod
    def from_dict(cls, d):
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = set(cls.__dataclass_fields__)
        extra = set(d) - known
        if extra:
            raise ValueError(f"Task description has unknown keys {sorted(extra)}; known keys are {sorted(known)}.")
        return cls(**d)


def resolve_cross_tasks(tasks, patterns, same_events=0.99):
    """Cross tasks feeding each head, leaving out tasks that carry no evidence about its unobserved pairs.

    A task b whose observed pairs coincide with task t's (>= ``same_events`` of each side's pairs in the other,
    e.g. MovieLens 'rated', 'liked' and 'rating', three views of one rating event) carries no evidence about
    t's *unobserved* pairs, yet on t's observed pairs it equals t's own target: the head would explain every
    positive by it and the shared factors would learn nothing. For an implicit task t it is enough that b's
    pairs lie inside t's (>= ``same_events`` of b's pairs are t's, e.g. Beibei's purchases, every one of them
    also carted, as a feature of 'cart'): x_b is then 0 on every pair t could recommend, and its weight can only
    take the positives it covers away from the shared factors. Such pairs are dropped and reported.

    Parameters
    ----------
    tasks : list of Task
    patterns : dict {task name: sparse matrix (n_users, n_items)}
        Each task's training observation pattern.
    same_events : float, default=0.99
        Share of pairs above which two patterns count as the same events (``mtl_classic._sparse.same_pairs``).

    Returns
    -------
    cross : dict {task: [cross task names]}
    dropped : dict {task: [dropped cross task names]}
    """
    names = [t.name for t in tasks]
    cross, dropped = {}, {}
    for t in tasks:
        if t.cross_tasks is None:
            wanted = []
        elif t.cross_tasks == "all":
            wanted = [n for n in names if n != t.name]
        else:
            wanted = list(t.cross_tasks)
        keep = []
        for b in wanted:
            b_inside_t, t_inside_b = same_pairs(patterns[t.name], patterns[b], same_events)
            if b_inside_t and (t.kind == "implicit" or t_inside_b):
                dropped.setdefault(t.name, []).append(b)
            else:
                keep.append(b)
        cross[t.name] = keep
    return cross, dropped


def _check_unique(names, what):
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"tasks: {what} names must be unique; {dup} appear more than once.")


def resolve_tasks(tasks_param, data):
    """The Task list a MultiTaskMF fits on ``data``: ``tasks_param`` (None: every task of the data, implicit, weight
    1; names become ``Task(name)``; ``weight="auto"`` becomes 1), copied and checked against the data (unique names,
    every named task present and observed, every data task named, cross tasks among the modelled ones, values valid
    for each kind)."""
    if tasks_param is None:
        tasks = [Task(name) for name in data.task_names]
    else:
        if isinstance(tasks_param, (Task, str)) or not hasattr(tasks_param, "__iter__"):
            raise ValueError(f"The 'tasks' parameter of MultiTaskMF must be a list of Task. Got {tasks_param!r}.")
        tasks = [Task(t) if isinstance(t, str) else copy.deepcopy(t) for t in tasks_param]
        for t in tasks:
            if not isinstance(t, Task):
                raise ValueError(f"The 'tasks' parameter of MultiTaskMF must hold Task objects. Got {t!r}.")
    if not tasks:
        raise ValueError("The 'tasks' parameter of MultiTaskMF is empty: give at least one Task.")
    names = [t.name for t in tasks]
    _check_unique(names, "task")
    for t in tasks:
        t.validate()
        if isinstance(t.weight, str):
            t.weight = 1.0
        if t.side is not None:
            raise ValueError(f"tasks: side task {t.name!r} ({t.side} side): this step resolves user x item tasks "
                             f"only; MultiTaskMF.fit and distributed.fit split the side tasks off first "
                             f"(resolve_side_tasks).")
    missing = [n for n in names if n not in data.task_names]
    if missing:
        raise ValueError(f"tasks {missing} are named in tasks= but absent from the data, which has tasks "
                         f"{list(data.task_names)}.")
    extra = [n for n in data.task_names if n not in names]
    if extra:
        raise ValueError(f"the data has tasks {extra} that tasks= does not name; pass "
                         f"data.subset_tasks({names!r}) to leave them out, or add Task entries for them.")
    for t in tasks:
        if t.cross_tasks not in (None, "all"):
            unknown = [c for c in t.cross_tasks if c not in names or c == t.name]
            if unknown:
                raise ValueError(f"tasks: task {t.name!r} has cross_tasks {unknown} that are not other modelled "
                                 f"tasks ({[n for n in names if n != t.name]}).")
    for t in tasks:
        m = data.matrices[t.name]
        if m.nnz == 0:
            raise ValueError(f"task {t.name!r} has no observations in the data.")
        t.check_values(m.data)
    return tasks


def resolve_side_tasks(tasks_param, data):
    """Split ``tasks_param`` into the pair tasks (for :func:`resolve_tasks`; None stays None) and the side tasks,
    checked against ``data.side``: with None, every side matrix of the data at the default weight (``"auto"``,
    resolved by :func:`resolve_side_weights`)."""
    side = getattr(data, "side", {}) or {}
    if tasks_param is None:
        return None, [Task(name, side=m.side) for name, m in side.items()]
    if isinstance(tasks_param, (Task, str)) or not hasattr(tasks_param, "__iter__"):
        return tasks_param, []
    listed = list(tasks_param)
    pairs = [t for t in listed if not (isinstance(t, Task) and t.side is not None)]
    sides = [copy.deepcopy(t) for t in listed if isinstance(t, Task) and t.side is not None]
    _check_unique([t.name for t in sides], "side task")
    for t in sides:
        t.validate()
        if t.name not in side:
            raise ValueError(f"tasks: side task {t.name!r} is not a side matrix of the data, which has "
                             f"{sorted(side)} (attach it with MultiTaskData.with_side).")
        if side[t.name].side != t.side:
            raise ValueError(f"tasks: side task {t.name!r} says side={t.side!r} but the data's matrix {t.name!r} is on "
                             f"the {side[t.name].side} side.")
    features = set()
    for t in pairs:
        name = getattr(t, "item_feature", None)
        if name is None:
            continue
        m = side.get(name)
        if m is None or m.side != "item" or m.n_columns != 1:
            raise ValueError(f"tasks: task {t.name!r} has item_feature={name!r}, which must name a 1-column item "
                             f"side matrix of the data; the data has {sorted(side)}"
                             + ("" if m is None else f" ({name!r}: {m.side} side, {m.n_columns} columns)") + ".")
        features.add(name)
    extra = [n for n in side if n not in [t.name for t in sides] and n not in features]
    if extra:
        raise ValueError(f"the data has side matrices {extra} that tasks= does not name; add Task(name, side=...) "
                         f"entries for them, or leave them out of the data.")
    return pairs, sides


def item_feature_values(tasks, data):
    """task name -> (the values of its ``item_feature`` per item of ``data``, None: a learned weight) for the tasks
    that have one (the side matrix's single column, 0 for items it does not list)."""
    return {t.name: (np.asarray(data.side[t.item_feature].matrix.toarray(), dtype=np.float64).ravel(), None)
            for t in tasks if getattr(t, "item_feature", None) is not None}


def item_feature_weights(tasks, data, item_biases):
    """task name -> gamma_t, the weight of each task's ``item_feature`` in its fitted item biases (``gamma_t a``;
    ``item_biases``: (T, n_items) in ``tasks`` order)."""
    index = {t.name: i for i, t in enumerate(tasks)}
    out = {}
    for name, (a, _) in item_feature_values(tasks, data).items():
        b = item_biases[index[name]]
        out[name] = float(b @ a / (a @ a)) if a @ a > 0 else 0.0
    return out


#: ``Task(alpha="auto")``: the observations' extra confidence totals this share of the whole-data negative mass
AUTO_CONFIDENCE_MASS = 0.02


def auto_alpha(value_sum, n_users, n_items, negative_weight=1.0, mass=AUTO_CONFIDENCE_MASS):
    """The confidence scale of ``Task(alpha="auto")``: ``mass * negative_weight * n_users * n_items / value_sum``,
    so that ``alpha * value_sum`` (the observations' confidence beyond 1) is ``mass`` times the negative mass.

    Parameters
    ----------
    value_sum : float
        Sum of the task's observed counts (its number of observations for 0/1 data).
    n_users, n_items : int
    negative_weight : float
        The task's ``w0``.
    mass : float
        The share of the negative mass (:data:`AUTO_CONFIDENCE_MASS`).

    Returns
    -------
    float
        1.0 when ``value_sum`` is 0 (every count 0: alpha has no effect).
    """
    if not value_sum > 0:
        return 1.0
    return float(mass) * float(negative_weight) * float(n_users) * float(n_items) / float(value_sum)


def resolve_alphas(tasks, value_sums, n_users, n_items):
    """The tasks with every implicit ``alpha="auto"`` replaced by :func:`auto_alpha` of its ``value_sums[name]``
    (new Task objects; the others are returned as they are)."""
    return [replace(t, alpha=auto_alpha(value_sums[t.name], n_users, n_items, t.negative_weight))
            if t.kind == "implicit" and isinstance(t.alpha, str) else t for t in tasks]


#: ``private_factors="auto"``: at most this many private factors per task, while the shared ones keep at least half
AUTO_PRIVATE_FACTORS = 8


def resolve_private_factors(private_factors, factors, n_tasks, coverage=None):
    """Private factors of each task of a fit.

    With one task, none. ``"auto"``: a task's block is sized by the share of its observed pairs that no other task
    observes, ``round(cap * (1 - coverage_t))`` with ``cap = min(8, factors // (2 * n_tasks))``: a task whose
    pairs the other behaviours all record (Beibei's purchases, every one carted) shares every factor, one whose
    pairs they mostly miss (Tmall's purchases) keeps a private block where the others say nothing, and at least
    half of the factors stay shared whatever the number of tasks. An int: that many for every task.

    Parameters
    ----------
    private_factors : int or "auto"
    factors : int
    n_tasks : int
    coverage : sequence of float or None
        Per task, the share of its observed pairs that another task also observes (:func:`mtl_classic._sparse.
        covered_pairs` over its pairs); None: the largest block the rule can give (the cap for every task).

    Returns
    -------
    list of int
        One size per task, in the tasks' order.
    """
    n_tasks = int(n_tasks)
    if n_tasks < 2:
        return [0] * n_tasks
    if not isinstance(private_factors, str):
        return [int(private_factors)] * n_tasks
    cap = min(AUTO_PRIVATE_FACTORS, int(factors) // (2 * n_tasks))
    if coverage is None:
        return [cap] * n_tasks
    return [int(np.floor(cap * (1.0 - min(max(float(c), 0.0), 1.0)) + 0.5)) for c in coverage]


#: ``Task(side=..., weight="auto")``: the side matrix's weighted mass is this share of the user x item tasks' mass
AUTO_SIDE_MASS = 2e-4


def pair_mass(tasks, nnz, value_sums):
    """The user x item tasks' mass: ``sum_t weight_t * (nnz_t + alpha_t * value_sum_t)`` for implicit tasks (their
    observations' confidence, the linear term of the whole-data loss) and ``weight_t * nnz_t`` for the others.

    Parameters
    ----------
    tasks : list of Task
        Resolved tasks (numeric weights and alphas).
    nnz, value_sums : dict {task name: number}
        Each task's observations and the sum of their values.
    """
    return float(sum(float(t.weight) * (nnz[t.name] + (float(t.alpha) * value_sums[t.name] if t.kind == "implicit"
                                                        else 0.0)) for t in tasks))


def side_mass(task, matrix):
    """A side matrix's own mass on the scale of :func:`pair_mass`: the sum of its squared values (the uniform and
    regression kinds' targets), of its entries' confidences ``1 + alpha * value`` (``alpha`` given) or its number of
    labels (binary)."""
    values = np.asarray(matrix.data, dtype=np.float64)
    alpha = task.resolved_side_alpha()
    if task.kind == "binary":
        return float(len(values))
    if alpha:
        return float(np.sum(1.0 + alpha * values))
    return float(np.sum(values * values))


def auto_side_weight(side, pair, share=AUTO_SIDE_MASS):
    """The weight of ``Task(side=..., weight="auto")``: ``share * pair / side`` (1.0 when the side mass is 0).

    Parameters
    ----------
    side : float
        The side matrix's mass (:func:`side_mass`).
    pair : float
        The user x item tasks' mass (:func:`pair_mass`).
    share : float
        :data:`AUTO_SIDE_MASS`.
    """
    if not side > 0 or not pair > 0:
        return 1.0
    return float(share) * float(pair) / float(side)


def resolve_side_weights(side_tasks, side, tasks, nnz, value_sums):
    """The side tasks with every ``weight="auto"`` replaced by :func:`auto_side_weight` (new Task objects; the others
    are returned as they are). ``side``: name -> the data's side matrix (its ``.matrix``); ``tasks``, ``nnz``,
    ``value_sums``: as :func:`pair_mass`."""
    if not any(isinstance(t.weight, str) for t in side_tasks):
        return list(side_tasks)
    pair = pair_mass(tasks, nnz, value_sums)
    return [replace(t, weight=auto_side_weight(side_mass(t, side[t.name].matrix), pair))
            if isinstance(t.weight, str) else t for t in side_tasks]
