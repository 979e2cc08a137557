"""mtl_classic: multi-task recommendation with classical machine learning.

One jointly regularised matrix factorisation whose latent factors are shared by all tasks (behaviours), with a
linear or logistic head per task, trained by an alternating solver. See docs/MATH.md.

The public names are imported lazily, so that ``import mtl_classic.inference`` (the serving path) loads numpy and
scipy only.
"""
from ._errors import NotFittedError
from ._version import __version__
from .tasks import Task

__all__ = ["__version__", "NotFittedError", "Task", "MultiTaskData", "MultiTaskMF"]


def __getattr__(name):
    if name == "MultiTaskData":
        from .data import MultiTaskData
        return MultiTaskData
    if name == "MultiTaskMF":
        from .model import MultiTaskMF
        return MultiTaskMF
    raise AttributeError(f"module 'mtl_classic' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + ["MultiTaskData", "MultiTaskMF"])
