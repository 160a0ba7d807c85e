"""synthesis.robustness.analyse end to end: records with covariates -> table -> robustness.

The project holds the 13 BCG trials (dat.bcg, log risk ratios entered as an SMD-scale effect
with its SE) with allocation and absolute latitude as record covariates, so the REML numbers
must equal metafor's (tests/data/metafor/metareg_bcg.json, make_metareg_reference.R).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from peerevidence.stats.exact import exact_posterior
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior
from peerevidence.synthesis.robustness import analyse
from peerevidence.synthesis.subgroups import timepoint_months
from projectkit import MINIMAL, exact_result, problems

REF = json.loads((Path(__file__).parents[1] / "data" / "metafor" / "metareg_bcg.json").read_text("utf-8"))
D = REF["data"]
TOL = 1e-6

RECORD = """\
study: {key}
design: rct
country: Testland
setting: Test setting
population: Test population
intervention: Test intervention
comparator: Usual care
sample_size: {{randomised: 100, source: {{locator: Abstract, snippet: "100 randomised"}}}}
risk_of_bias: {{tool: RoB 2, overall: {rob}, assessed_by: tests}}
extraction: {{extracted_by: tests, checked_by: tests, date: "2024-01-01"}}
{indirect}covariates:
{covariates}results:
  - outcome: hope
    direction: higher_is_better
    timepoint: {timepoint}
    form: effect
    measure: SMD
    estimate: {y!r}
    se: {se!r}
    source: {{locator: Table 1, snippet: "test data"}}
"""

COVARIATE = '  {name}: {{value: {value}, source: {{locator: Table 1, snippet: "test data"}}}}\n'

BIB = "@article{{{key},\n  author = {{Test, A.}},\n  title = {{Trial {key}}},\n  journal = {{J}},\n  year = {{{year}}}\n}}\n"


def build(tmp_path: Path, studies: list[dict], analysis_extra: str) -> Path:
    """A copy of the minimal project whose records are ``studies`` (hope outcome only)."""
    root = tmp_path / "project"
    shutil.copytree(MINIMAL, root)
    for f in (root / "extraction").glob("*.yaml"):
        f.unlink()
    bib = (root / "references.bib").read_text("utf-8")
    for s in studies:
        covs = "".join(COVARIATE.format(name=n, value=v) for n, v in s.get("covariates", {}).items())
        indirect = f"indirectness: {s['indirect']}\n" if s.get("indirect") else ""
        text = RECORD.format(
            key=s["key"],
            rob=s.get("rob", "low"),
            indirect=indirect,
            covariates=covs or "  {}\n",
            timepoint=s.get("timepoint", "6 months"),
            y=float(s["y"]),
            se=float(s["se"]),
        )
        if not covs:
            text = text.replace("covariates:\n  {}\n", "")
        (root / "extraction" / f"{s['key']}.yaml").write_text(text, "utf-8")
        bib += "\n" + BIB.format(key=s["key"], year=s["year"])
    (root / "references.bib").write_text(bib, "utf-8")
    analysis = (root / "evidence" / "analysis.yaml").read_text("utf-8")
    analysis = analysis.replace("  hope: {mid: 0.2}\n", analysis_extra)
    (root / "evidence" / "analysis.yaml").write_text(analysis, "utf-8")
    return root


def bcg_studies() -> list[dict]:
    return [
        {
            "key": f"bcg{i + 1:02d}",
            "y": D["yi"][i],
            "se": math.sqrt(D["vi"][i]),
            "year": int(D["year"][i]),
            "rob": "high" if i % 3 == 0 else "low",
            "indirect": "different population" if i == 4 else None,
            "covariates": {"alloc": D["alloc"][i], "ablat": float(D["ablat"][i])},
        }
        for i in range(13)
    ]


@pytest.fixture(scope="module")
def bcg(tmp_path_factory):
    root = build(
        tmp_path_factory.mktemp("bcg"),
        bcg_studies(),
        "  hope: {mid: 0.2, subgroups: [alloc], moderators: [ablat, alloc]}\n",
    )
    errors = [p for p in problems(root) if not p.startswith("warning")]
    assert errors == []
    result = exact_result(root)
    return result, analyse(result)["hope"]


def close(a, b, tol=TOL):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=tol)


def test_leave_one_out_rows_match_metafor(bcg):
    _, rob = bcg
    loo = [r for r in rob.rows if r.kind == "leave_one_out"]
    assert [r.study for r in loo] == [f"bcg{i:02d}" for i in range(1, 14)]
    close([r.reml_mu for r in loo], REF["leave1out"]["estimate"])
    close([r.reml_ci_lb for r in loo], REF["leave1out"]["ci_lb"])
    close([r.reml_tau2 for r in loo], REF["leave1out"]["tau2"])


def test_leave_one_out_bayesian_rows_are_exact_without_the_study(bcg):
    _, rob = bcg
    row = next(r for r in rob.rows if r.study == "bcg07" and r.kind == "leave_one_out")
    keep = np.arange(13) != 6
    post = exact_posterior(
        np.array(D["yi"])[keep],
        np.array(D["vi"])[keep],
        parse_mu_prior("normal:0:1"),
        parse_tau_prior("halfnormal:0.5"),
    )
    assert row.mu_q50 == pytest.approx(post.mu().q50, abs=1e-9)
    assert row.k == 12


def test_cumulative_rows_follow_publication_year_as_metafor(bcg):
    _, rob = bcg
    cum = [r for r in rob.rows if r.kind == "cumulative"]
    assert [int(r.study[3:]) for r in cum] == REF["cumulative"]["order"]
    close([r.reml_mu for r in cum], REF["cumulative"]["estimate"])
    close([r.reml_tau2 for r in cum], REF["cumulative"]["tau2"])


def test_subset_rows(bcg):
    _, rob = bcg
    labels = {r.label: r for r in rob.rows if r.kind == "subset"}
    # all trials are rct: no separate randomised-only row
    assert set(labels) == {"low risk of bias only", "excluding studies flagged indirect"}
    assert labels["low risk of bias only"].k == 8  # trials 2, 3, 5, 6, 8, 9, 11, 12
    assert labels["excluding studies flagged indirect"].k == 12


def test_subgroup_analysis_matches_metafor(bcg):
    _, rob = bcg
    (sub,) = rob.subgroups
    assert sub.moderator == "alloc" and sub.missing == ()
    close(
        [sub.qm, sub.qm_p, sub.tau2_residual], [REF["alloc"]["QM"], REF["alloc"]["QMp"], REF["alloc"]["tau2"]]
    )
    close([g.effect.reml for g in sub.groups], [s["mu"] for s in REF["subgroups"]])
    diff = {(d.reference, d.group): d for d in sub.differences}
    beta = dict(zip(REF["alloc"]["names"], REF["alloc"]["beta"], strict=True))
    close(diff[("alternate", "random")].difference.reml, beta["allocrandom"])
    close(diff[("alternate", "systematic")].difference.reml, beta["allocsystematic"])
    assert len(sub.differences) == 3  # every pair of the three subgroups
    for d in sub.differences:
        assert 0 <= d.p_abs_gt_mid <= 1 and 0 <= d.difference.p_gt_0 <= 1


def test_meta_regression_matches_metafor(bcg):
    _, rob = bcg
    mod = rob.moderators
    ref = REF["ablat_alloc"]
    assert [c.name for c in mod.coefficients] == ref["names"][1:]
    close([c.value.reml for c in mod.coefficients], ref["beta"][1:])
    close([c.reml_se for c in mod.coefficients], ref["se"][1:])
    close([mod.qm, mod.qm_p, mod.tau2_residual, mod.r2], [ref["QM"], ref["QMp"], ref["tau2"], ref["R2"]])
    slope = mod.coefficients[0]
    assert slope.value.q025 < slope.value.q50 < slope.value.q975 < 0  # latitude: stronger benefit


def test_small_study_effects_match_metafor(bcg):
    _, rob = bcg
    ss = rob.small_studies
    close([ss.egger.zval, ss.egger.pval], [REF["regtest_lm_sei"]["zval"], REF["regtest_lm_sei"]["pval"]])
    close([ss.pet.est, ss.peese.est], [REF["regtest_rma_sei"]["est"], REF["regtest_rma_vi"]["est"]])
    assert ss.peters is None  # effects, not two-arm binary data
    assert len(ss.funnel) == 13


def test_a_study_whose_removal_changes_the_conclusion_is_flagged(tmp_path):
    studies = [{"key": f"s{i}", "y": 0.3, "se": 0.3, "year": 2000 + i} for i in range(4)] + [
        {"key": "s9", "y": 0.5, "se": 0.05, "year": 2010}
    ]
    root = build(tmp_path, studies, "  hope: {mid: 0.2}\n")
    rob = analyse(exact_result(root))["hope"]
    assert rob.conclusion == "above 0"
    assert rob.influential == ("s9",)
    flagged = {(r.kind, r.study) for r in rob.rows if r.changes_conclusion}
    # without s9, and every cumulative step before s9 arrives, the interval includes 0
    assert flagged == {("leave_one_out", "s9")} | {("cumulative", f"s{i}") for i in range(4)}
    assert rob.small_studies is not None and rob.small_studies.k == 5


def test_missing_covariate_is_listed_not_imputed(tmp_path):
    studies = bcg_studies()
    del studies[3]["covariates"]["ablat"]
    root = build(tmp_path, studies, "  hope: {mid: 0.2, moderators: [ablat]}\n")
    rob = analyse(exact_result(root))["hope"]
    assert rob.moderators.missing == ("bcg04",)
    assert rob.moderators.k == 12


@pytest.mark.parametrize(
    "text, months",
    [
        ("post-test (12 months)", 12.0),
        ("8 weeks", 8 * 7 / 30.4375),
        ("two-year follow-up", None),
        ("1 year", 12.0),
    ],
)
def test_timepoint_months(text, months):
    assert timepoint_months(text) == (pytest.approx(months) if months is not None else None)
