"""benchmarks/RESULTS.md and the README's results section are what benchmarks/make_results.py makes of the tracked
files under benchmarks/results/, and their templates type no result by hand.

Runs no benchmark and reads no dataset: only the templates, the results files and the two documents.
"""
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
TEMPLATES = [BENCH / "RESULTS.in.md", BENCH / "README_results.in.md"]


@pytest.fixture(scope="module")
def make_results():
    spec = importlib.util.spec_from_file_location("make_results", BENCH / "make_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_md_is_what_the_generator_makes(make_results):
    generated = make_results.build_results()
    assert (BENCH / "RESULTS.md").read_text() == generated, (
        "benchmarks/RESULTS.md differs from its template + benchmarks/results/; run python benchmarks/make_results.py")


def test_readme_results_section_is_what_the_generator_makes(make_results):
    generated, current = make_results.build_readme()
    assert current == generated, (
        "README.md's results section differs from its template; run python benchmarks/make_results.py")
    assert "| NDCG@10 (HR@10) |" in current.split(make_results.BEGIN)[1].split(make_results.END)[0]


def _prose(template):
    """The template's text without its directive comments and {{...}} values (what is typed by hand)."""
    text = re.sub(r"<!--.*?-->", "", template.read_text(), flags=re.S)
    return re.sub(r"\{\{.*?\}\}", "", text)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_templates_type_no_table_rows(template):
    rows = [ln for ln in template.read_text().splitlines() if ln.lstrip().startswith("|")]
    assert not rows, f"{template.name}: tables must come from include/headline directives, found {rows[:3]}"


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_templates_type_no_measurement_like_numbers(template):
    """Numbers with 3 or more decimals, ratios like 1.5x and percentages are results: they must be looked up."""
    prose = _prose(template)
    found = re.findall(r"\b\d+\.\d{3,}\b|\b\d+(?:\.\d+)?x\b|\b\d+(?:\.\d+)?\s?%", prose)
    assert not found, f"{template.name}: hand-typed result-like numbers {found[:10]}"


def test_generator_fails_on_a_missing_value(make_results):
    with pytest.raises(make_results.TemplateError):
        # (a template's first line is its documentation comment, hence the leading line)
        make_results.render("probe\n<!-- let x = results/quality.json datasets/nowhere -->\n{{x}}\n", "probe")
    with pytest.raises(make_results.TemplateError):
        make_results.render("probe\n<!-- include results/quality.md table=99 -->\n", "probe")
    with pytest.raises(make_results.TemplateError):
        make_results.render("probe\n{{undefined_name}}\n", "probe")


def test_check_mode_reports_a_stale_document(make_results, tmp_path, monkeypatch, capsys):
    stale = tmp_path / "RESULTS.md"
    stale.write_text((BENCH / "RESULTS.md").read_text() + "a hand-made edit\n")
    monkeypatch.setattr(make_results, "RESULTS_MD", str(stale))
    assert make_results.main(["--check"]) == 1
    assert "a hand-made edit" in capsys.readouterr().out


def test_every_linked_results_file_exists():
    """Links from RESULTS.md and the README into benchmarks/results/ point at tracked files that exist."""
    missing = []
    for doc, base in ((BENCH / "RESULTS.md", BENCH), (ROOT / "README.md", ROOT)):
        for target in re.findall(r"\]\(((?:benchmarks/)?results/[^)\s#]*)\)", doc.read_text()):
            if not (base / target).exists():
                missing.append(f"{doc.name}: {target}")
    assert not missing, missing


def test_paired_bootstrap_ratio_brackets_the_ratio_and_narrows_with_more_users(monkeypatch):
    import numpy as np
    monkeypatch.syspath_prepend(str(BENCH))
    import _common as C
    rng = np.random.default_rng(0)
    small = rng.random(200), rng.random(200) + 0.1
    big = rng.random(20000), rng.random(20000) + 0.1
    r, lo, hi = C.paired_bootstrap_ratio(*small)
    assert r == pytest.approx(small[0].mean() / small[1].mean()) and lo < r < hi
    r2, lo2, hi2 = C.paired_bootstrap_ratio(*big)
    assert lo2 < r2 < hi2 and (hi2 - lo2) < (hi - lo) / 5          # ~ 1 / sqrt(n): 10x narrower
    same = rng.random(300)
    assert C.paired_bootstrap_ratio(same, same) == (1.0, 1.0, 1.0)  # paired: identical models never differ
    with pytest.raises(ValueError, match="equal-length"):
        C.paired_bootstrap_ratio(same, same[:-1])


def test_beibei_validation_holds_out_each_users_highest_index_purchase(monkeypatch):
    """The benchmarks' Beibei validation (``_common.leave_highest_index_out``): each user with two or more target
    pairs loses exactly the one with the highest item index, the rest and the other tasks stay as they were."""
    import numpy as np
    import scipy.sparse as sp
    from mtl_classic.data import MultiTaskData
    monkeypatch.syspath_prepend(str(BENCH))
    import _common as C
    buy = sp.csr_matrix(np.array([[1, 0, 1, 1], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=float))
    cart = sp.csr_matrix(np.ones((4, 4)))
    data = MultiTaskData.from_matrices({"cart": cart, "buy": buy})
    train, held, how = C.leave_highest_index_out(data, "buy")
    np.testing.assert_array_equal(held.toarray(), [[0, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(train.matrices["buy"].toarray(), buy.toarray() - held.toarray())
    assert (train.matrices["cart"] != cart).nnz == 0 and "highest-item-index" in how
