"""Synthetic multi-behaviour data with planted factors, for recovery tests, sanity anchors and scaling runs.

Every generator is seeded and returns plain CSR matrices over one user and item index, so the same call gives the
same data in the tests and in the benchmarks.
"""
import numpy as np
import scipy.sparse as sp

__all__ = ["planted_aux_target", "planted_counts", "hold_out_one_per_user"]


def planted_aux_target(seed=0, n_users=400, n_items=300, rank=3, aux_offset=-4.0, target_offset=-9.0, scale=2.0,
                       aux_factors="shared"):
    """A dense auxiliary behaviour and a sparse target behaviour sampled from planted factors.

    Both are Bernoulli draws with ``P(u, i) = sigmoid(scale * U_u . V_i + offset)``, the auxiliary one with
    ``aux_offset`` (dense) and the target one with ``target_offset`` (sparse); one target pair per user with at
    least two is held out. With ``aux_factors="independent"`` the auxiliary behaviour is drawn from other planted
    factors of the same size instead (it says nothing about the target: a negative-transfer case).

    Parameters
    ----------
    seed : int, default=0
    n_users, n_items, rank : int
    aux_offset, target_offset : float
        The logits' offsets of the two behaviours.
    scale : float, default=2.0
        Scale of the planted logits ``U V^T``.
    aux_factors : {"shared", "independent"}, default="shared"
        Whether the auxiliary behaviour comes from the target's planted factors or from factors of its own.

    Returns
    -------
    user_factors : ndarray (n_users, rank)
        The planted U (standard normal).
    aux, target, test : csr_matrix (n_users, n_items)
        0/1 auxiliary and target observations (training), and the held-out target pairs.
    """
    if aux_factors not in ("shared", "independent"):
        raise ValueError(f"planted_aux_target: aux_factors must be 'shared' or 'independent'. Got {aux_factors!r}.")
    rng = np.random.default_rng(seed)
    U, V = rng.normal(size=(n_users, rank)), rng.normal(size=(n_items, rank))
    logits = scale * U @ V.T
    aux_logits = logits
    if aux_factors == "independent":   # drawn after U, V: the shared case's draws stay as they were
        aux_logits = scale * rng.normal(size=(n_users, rank)) @ rng.normal(size=(n_items, rank)).T

    def sample(z, offset):
        p = 1 / (1 + np.exp(-(z + offset)))
        return (rng.random(p.shape) < p).astype(float)

    aux, target = sample(aux_logits, aux_offset), sample(logits, target_offset)
    test = hold_out_one_per_user(target, rng)
    return U, sp.csr_matrix(aux), sp.csr_matrix(target), sp.csr_matrix(test)


def hold_out_one_per_user(target, rng):
    """Move one random observed pair of every row with at least two from the dense 0/1 ``target`` (in place) into
    the returned held-out array of the same shape."""
    test = np.zeros_like(target)
    for u in range(target.shape[0]):
        items = np.flatnonzero(target[u])
        if len(items) >= 2:
            i = rng.choice(items)
            target[u, i], test[u, i] = 0.0, 1.0
    return test


def planted_counts(seed=5, n_users=300, n_items=200, rank=4, offset=-2.5):
    """Implicit counts from planted factors (one task), with one training pair per user (with at least two) held out.

    A pair is observed with probability ``sigmoid(U_u . V_i + offset)``, its count uniform in 1..3.

    Returns
    -------
    train, test : csr_matrix (n_users, n_items)
        Training counts (held-out pairs removed) and the held-out pairs (value 1).
    """
    rng = np.random.default_rng(seed)
    U, V = rng.normal(size=(n_users, rank)), rng.normal(size=(n_items, rank))
    p = 1 / (1 + np.exp(-(U @ V.T + offset)))
    counts = sp.csr_matrix((rng.random(p.shape) < p) * rng.integers(1, 4, p.shape).astype(float))
    train, test = counts.tolil(), sp.lil_matrix(counts.shape)
    for u in range(counts.shape[0]):
        items = train.rows[u]
        if len(items) >= 2:
            i = items[rng.integers(len(items))]
            test[u, i], train[u, i] = 1.0, 0.0
    train, test = train.tocsr(), test.tocsr()
    train.eliminate_zeros()           # the held-out pairs were set to 0 above: they are not observations
    return train, test
