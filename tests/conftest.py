"""Shared fixtures: the synthetic datasets and the fitted models that several test modules use.

Session-scoped models are shared between modules: tests must not modify them (copy first, as
``copy.deepcopy(model)``).
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))   # tests/_synthetic.py, importable from every test module

from _synthetic import TASKS, block_data, four_task_data  # noqa: E402

from mtl_classic.model import MultiTaskMF  # noqa: E402


@pytest.fixture(scope="session")
def block():
    """(data, withheld item per user) of :func:`_synthetic.block_data`: two user blocks x two item blocks."""
    return block_data()


@pytest.fixture(scope="session")
def four_task_model():
    """MultiTaskMF (k=5, 4 sweeps) on :func:`_synthetic.four_task_data`: view, buy, rating, liked."""
    return MultiTaskMF(tasks=TASKS, factors=5, iterations=4, random_state=0).fit(four_task_data())
