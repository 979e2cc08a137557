"""mtl_classic: multi-task recommendation with classical machine learning.

One jointly regularised matrix factorisation whose latent factors are shared by all tasks (behaviours), with a
linear or logistic head per task, trained by an alternating solver. See DESIGN.md in the project's shared notes.
"""
from ._version import __version__
from .tasks import Task
from .data import MultiTaskData
from .model import MultiTaskMF

__all__ = ["__version__", "Task", "MultiTaskData", "MultiTaskMF"]
