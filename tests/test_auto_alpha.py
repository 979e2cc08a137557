"""Task(alpha="auto"): the confidence scale derived from the data (mtl_classic.tasks.auto_alpha)."""
import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore:MultiTaskMF. cross-task features left out")
from sklearn.base import clone

from _synthetic import four_task_data
from mtl_classic import MultiTaskMF, Task
from mtl_classic.tasks import AUTO_CONFIDENCE_MASS, auto_alpha

KW = dict(factors=4, iterations=3, random_state=0, dtype="float64", show_progress=False)


def test_auto_alpha_puts_the_positives_extra_confidence_at_one_share_of_the_negative_mass():
    # 200 users x 50 items, counts summing to 400: alpha * 400 = mass * 2.0 * 200 * 50
    alpha = auto_alpha(400.0, 200, 50, negative_weight=2.0)
    assert alpha == pytest.approx(AUTO_CONFIDENCE_MASS * 2.0 * 200 * 50 / 400.0)
    assert alpha * 400.0 == pytest.approx(AUTO_CONFIDENCE_MASS * 2.0 * 200 * 50)
    assert auto_alpha(0.0, 10, 10) == 1.0  # every count 0: alpha has no effect
    # a sparser task gets a larger alpha, in proportion
    assert auto_alpha(100.0, 200, 50) == pytest.approx(4 * auto_alpha(400.0, 200, 50))


def test_auto_alpha_is_resolved_per_task_and_equals_the_fit_with_that_number(tmp_path):
    data = four_task_data(n_users=40, n_items=25)
    tasks = [Task("view", weight=0.5, alpha="auto"), Task("buy", alpha="auto"),
             Task("rating", kind="regression", alpha="auto"), Task("liked", kind="binary")]
    model = MultiTaskMF(tasks=tasks, **KW).fit(data)
    got = {t.name: t.alpha for t in model.tasks_}
    for name in ("view", "buy"):
        m = data.matrices[name]
        assert got[name] == pytest.approx(auto_alpha(float(m.data.sum()), data.n_users, data.n_items))
    assert got["view"] != got["buy"]          # view counts are larger and denser: a smaller alpha
    assert got["view"] < got["buy"]
    assert got["rating"] == "auto"            # not an implicit task: alpha has no meaning, left as given
    # the estimator's own parameter is untouched (sklearn: __init__ parameters stay verbatim)
    assert model.tasks[0].alpha == "auto" and clone(model).tasks[1].alpha == "auto"
    numeric = [Task("view", weight=0.5, alpha=got["view"]), Task("buy", alpha=got["buy"]),
               Task("rating", kind="regression"), Task("liked", kind="binary")]
    same = MultiTaskMF(tasks=numeric, **KW).fit(data)
    np.testing.assert_allclose(model.loss_history_, same.loss_history_, rtol=1e-12)
    np.testing.assert_allclose(model.user_factors_, same.user_factors_, rtol=1e-10, atol=1e-12)
    # the resolved value travels with the saved model (fold-in of new users uses the fitted confidence)
    loaded = MultiTaskMF.load(model.save(tmp_path / "m"))
    assert [t.alpha for t in loaded.tasks_] == [t.alpha for t in model.tasks_]


def test_bad_alpha_strings_are_named():
    data = four_task_data(n_users=10, n_items=8)
    with pytest.raises(ValueError, match="task 'buy'.*alpha must be a finite number >= 0 or 'auto'"):
        MultiTaskMF(tasks=[Task("view"), Task("buy", alpha="large"), Task("rating", kind="regression"),
                           Task("liked", kind="binary")], **KW).fit(data)
