"""The pydantic models of peerevidence.records.schema, used directly (no files, no CLI)."""

from __future__ import annotations

import copy
import json
import math

import pytest
from pydantic import ValidationError

from peerevidence.pooling.table import effect_of, measure_route, record_rows, resolve_direction
from peerevidence.records.schema import (
    AnalysisConfig,
    Arm,
    BiasSetting,
    BinaryResult,
    CertaintyOverrides,
    ChangeModel,
    ContinuousResult,
    Edge,
    EffectResult,
    EventArm,
    NotObtained,
    NotReported,
    Outcome,
    OutcomeCatalogue,
    PooledResult,
    Quote,
    Record,
    SampleSize,
    Source,
)
from projectkit import (
    DATA,
    MINIMAL,
    dump_yaml,
    line_no,
    load_yaml_text,
    make_project,
    problems,
    spare_record_data,
    write,
)

SOURCE = {"locator": "Table 2", "snippet": "the numbers"}


def errors_of(model, data) -> list[tuple[tuple, str]]:
    """``[(loc, type), ...]`` of the ValidationError raised for ``data``."""
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [(tuple(e["loc"]), e["type"]) for e in info.value.errors()]


def messages_of(model, data) -> list[str]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [e["msg"].removeprefix("Value error, ") for e in info.value.errors()]


def effect(**changes) -> dict:
    data = {
        "outcome": "symptoms",
        "timepoint": "6 months",
        "form": "effect",
        "measure": "SMD",
        "estimate": -0.3,
        "ci_low": -0.66,
        "ci_high": 0.06,
        "source": dict(SOURCE),
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def outcome(**changes) -> Outcome:
    data = {
        "id": "symptoms",
        "label": "Symptoms",
        "node": "symptoms",
        "measure": "SMD",
        "direction": "higher_is_better",
        "instruments": [
            {"name": "Brief Psychiatric Rating Scale", "direction": "lower_is_better", "aliases": ["BPRS"]}
        ],
    }
    data.update(changes)
    return Outcome.model_validate(data)


# --------------------------------------------------------------------------- valid examples


@pytest.mark.parametrize("name", ["trial2020", "cohort2019", "review2021"])
def test_minimal_records_parse(name):
    data = load_yaml_text((MINIMAL / "extraction" / f"{name}.yaml").read_text("utf-8"))
    record = Record.model_validate(data)
    assert record.study == name


def test_record_parses_into_typed_results():
    record = Record.model_validate(load_yaml_text((MINIMAL / "extraction/trial2020.yaml").read_text()))
    hope, symptoms, readmission = record.results
    assert isinstance(hope, ContinuousResult) and hope.control.sd == 5.5 and hope.control.n == 57
    assert isinstance(symptoms, EffectResult) and symptoms.ci_level == 0.95
    assert symptoms.harmonised is False
    assert isinstance(readmission, BinaryResult) and readmission.intervention.events == 12
    assert readmission.reported is not None and readmission.reported.measure == "OR"
    assert record.sample_size.randomised == 120
    assert record.risk_of_bias.domains == {"D1_randomisation": "low", "D2_deviations": "some_concerns"}


def test_review_and_not_reported_results_parse():
    review = Record.model_validate(load_yaml_text((MINIMAL / "extraction/review2021.yaml").read_text()))
    pooled, missing = review.results
    assert isinstance(pooled, PooledResult) and (pooled.k, pooled.n, pooled.i2) == (3, 967, 65)
    assert isinstance(missing, NotReported) and missing.reason == "Symptoms were not pooled"
    assert review.review is not None and review.review.studies == 12


@pytest.mark.parametrize("name", ["change_model", "outcomes", "analysis"])
def test_minimal_evidence_files_parse(name):
    model = {"change_model": ChangeModel, "outcomes": OutcomeCatalogue, "analysis": AnalysisConfig}[name]
    model.model_validate(load_yaml_text((MINIMAL / "evidence" / f"{name}.yaml").read_text("utf-8")))


def test_an_int_is_accepted_where_a_float_is_expected():
    assert Arm.model_validate({"n": 10, "mean": 30, "sd": 5}).mean == 30


# --------------------------------------------------------------------------- extra="forbid"


@pytest.mark.parametrize(
    ("where", "loc"),
    [
        ((), ("colour",)),
        (("sample_size",), ("sample_size", "colour")),
        (("results", 0), ("results", 0, "continuous", "colour")),
        (("results", 0, "control"), ("results", 0, "continuous", "control", "colour")),
        (("results", 0, "source"), ("results", 0, "continuous", "source", "colour")),
    ],
)
def test_unknown_keys_are_forbidden_at_every_level(where, loc):
    data = spare_record_data()
    target = data
    for part in where:
        target = target[part]
    target["colour"] = "blue"
    assert errors_of(Record, data) == [(loc, "extra_forbidden")]


def test_edge_takes_from_by_its_alias():
    edge = Edge.model_validate(
        {
            "id": "E01",
            "from": "a",
            "to": "b",
            "wording": "w",
            "locator": "L1",
            "source": "x",
            "basis": ["theory"],
        }
    )
    assert edge.from_ == "a"
    assert errors_of(
        Edge,
        {"id": "E1x", "from": "a", "to": "b", "wording": "w", "locator": "L1", "source": "x", "basis": []},
    ) == [(("id",), "string_pattern_mismatch"), (("basis",), "too_short")]


# --------------------------------------------------------------------------- frozen


def test_models_are_frozen():
    record = Record.model_validate(spare_record_data())
    with pytest.raises(ValidationError, match="frozen"):
        record.study = "other"
    with pytest.raises(ValidationError, match="frozen"):
        record.results[0].control.sd = 1.0


# --------------------------------------------------------------------------- strict types


@pytest.mark.parametrize(
    ("value", "kind"),
    [("12", "int_type"), (12.0, "int_type"), (True, "int_type"), (None, "int_type")],
)
def test_n_is_a_strict_int(value, kind):
    assert errors_of(Arm, {"n": value, "mean": 1.0, "sd": 1.0}) == [(("n",), kind)]


@pytest.mark.parametrize("value", ["1.5", True, [1.5]])
def test_mean_is_a_strict_number(value):
    assert errors_of(Arm, {"n": 5, "mean": value, "sd": 1.0}) == [(("mean",), "float_type")]


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_numbers_must_be_finite(value):
    assert errors_of(Arm, {"n": 5, "mean": value, "sd": 1.0}) == [(("mean",), "finite_number")]


def test_strings_are_not_coerced():
    data = spare_record_data()
    data["country"] = 44
    assert errors_of(Record, data) == [(("country",), "string_type")]


def test_lists_must_be_lists():
    data = spare_record_data()
    data["notes"] = "one note"
    assert errors_of(Record, data) == [(("notes",), "list_type")]


# --------------------------------------------------------------------------- value rules


@pytest.mark.parametrize(
    ("arm", "message"),
    [
        ({"events": 51, "total": 50}, "events (51) exceed total (50)"),
        ({"events": -1, "total": 50}, "Input should be greater than or equal to 0"),
        ({"events": 0, "total": 0}, "Input should be greater than 0"),
    ],
)
def test_event_arm_rules(arm, message):
    assert messages_of(EventArm, arm) == [message]


def test_event_arm_edges_are_valid():
    assert EventArm.model_validate({"events": 50, "total": 50}).events == 50
    assert EventArm.model_validate({"events": 0, "total": 1}).events == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"estimate": 0.5, "ci_low": -0.1, "ci_high": 0.3},
            "CI [-0.1, 0.3] does not contain the estimate 0.5",
        ),
        ({"estimate": 0.4, "ci_low": 0.6, "ci_high": 0.2}, "ci_low (0.6) is above ci_high (0.2)"),
        ({"ci_high": None}, "give both ci_low and ci_high, or neither"),
        (
            {"ci_low": None, "ci_high": None},
            "an effect needs ci_low/ci_high or se (or, for an SMD, n_intervention and n_control)",
        ),
        ({"measure": "MD", "ci_low": None, "ci_high": None}, "an effect needs ci_low/ci_high or se"),
        (
            {"measure": "OR", "estimate": 0.0, "ci_low": None, "ci_high": None, "se": 0.2},
            "estimate of a ratio measure must be > 0 (got 0.0)",
        ),
        (
            {"measure": "RR", "estimate": 0.5, "ci_low": 0.0, "ci_high": 0.9},
            "ci_low of a ratio measure must be > 0 (got 0.0)",
        ),
        (
            {"measure": "r", "estimate": 1.0, "ci_low": None, "ci_high": None, "n": 50},
            "a correlation must lie in (-1, 1) (got 1.0)",
        ),
        (
            {"measure": "r", "estimate": 0.3, "ci_low": None, "ci_high": None},
            "a correlation needs n (or a CI or SE)",
        ),
    ],
)
def test_effect_interval_rules(changes, message):
    assert messages_of(EffectResult, effect(**changes)) == [message]


@pytest.mark.parametrize(
    "changes",
    [
        {"estimate": 0.06},  # on the upper bound
        {"estimate": -0.66},  # on the lower bound
        {"ci_low": None, "ci_high": None, "se": 0.18},
        {"measure": "OR", "estimate": 0.7, "ci_low": 0.5, "ci_high": 0.98},
        {"measure": "r", "estimate": -0.2, "ci_low": None, "ci_high": None, "n": 80},
        {"ci_level": 0.9},
    ],
)
def test_valid_effects(changes):
    EffectResult.model_validate(effect(**changes))


@pytest.mark.parametrize("level", [0, 1, 95])
def test_ci_level_is_a_fraction(level):
    assert errors_of(EffectResult, effect(ci_level=level))[0][0] == ("ci_level",)


def test_pooled_result_needs_a_sign_convention():
    data = {
        "outcome": "hope",
        "timepoint": "end",
        "form": "pooled",
        "measure": "SMD",
        "estimate": 0.24,
        "source": SOURCE,
    }
    assert errors_of(PooledResult, data) == [(("sign_convention",), "missing")]
    assert errors_of(PooledResult, {**data, "sign_convention": "x", "i2": 101}) == [
        (("i2",), "less_than_equal")
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            {"locator": "Table 2"},
            "a text source needs a verbatim snippet (kind: figure or dataset may omit it)",
        ),
        (
            {"locator": "Table 2", "kind": "table", "snippet": "   "},
            "a table source needs a verbatim snippet (kind: figure or dataset may omit it)",
        ),
        (
            {"locator": "Table 2", "snippet": " ".join(["word"] * 31)},
            "snippet has 31 words; keep it to 30 (cut with ' … ')",
        ),
    ],
)
def test_source_rules(source, message):
    assert messages_of(Source, source) == [message]


@pytest.mark.parametrize(
    "source",
    [
        {"locator": "Figure 2", "kind": "figure"},
        {"locator": "data.csv row 3", "kind": "dataset"},
        {"locator": "Table 2", "snippet": " ".join(["word"] * 30)},
    ],
)
def test_valid_sources(source):
    Source.model_validate(source)


def test_sample_sizes_need_a_source():
    assert messages_of(SampleSize, {"randomised": 10}) == ["sample sizes need a source (locator and snippet)"]
    assert SampleSize.model_validate({"note": "not reported"}).randomised is None


@pytest.mark.parametrize(
    ("design", "result", "message"),
    [
        ("rct", "pooled", "results[0].form: a pooled result belongs in a systematic_review record"),
        (
            "systematic_review",
            "continuous",
            "results[0].form: a systematic_review record holds only pooled, not_reported or not_obtained results "
            "(record the trials themselves in their own records)",
        ),
    ],
)
def test_review_rules_are_checked_with_their_line(tmp_path, design, result, message):
    """The schema accepts these; the cross-file checker reports them, located."""
    data = spare_record_data()
    data["design"] = design
    if design == "systematic_review":
        data["review"] = {"sign_convention": "positive favours peer support", "source": SOURCE}
    if result == "pooled":
        data["results"] = [
            {
                "outcome": "hope",
                "timepoint": "end",
                "form": "pooled",
                "measure": "SMD",
                "estimate": 0.2,
                "sign_convention": "x",
                "source": SOURCE,
            }
        ]
    Record.model_validate(data)
    root = make_project(tmp_path)
    write(root, "extraction/spare2020.yaml", dump_yaml(data))
    line = line_no(root, "extraction/spare2020.yaml", "form:")
    assert f"extraction/spare2020.yaml:{line}: {message}" in problems(root)


def test_results_must_not_be_empty():
    data = spare_record_data()
    data["results"] = []
    assert errors_of(Record, data) == [(("results",), "too_short")]


def test_quote_participant_pattern():
    Quote.model_validate({"participant": "PAR1PW01", "node": "hope", "text": "t", "locator": "L1"})
    assert errors_of(Quote, {"participant": "PAR1PW1", "node": "hope", "text": "t", "locator": "L1"}) == [
        (("participant",), "string_pattern_mismatch")
    ]


def test_association_outcome_needs_exposure():
    with pytest.raises(ValidationError, match="an association outcome needs `exposure`"):
        outcome(kind="association")
    assert outcome(kind="association", exposure="hope").exposure == "hope"


def test_analysis_defaults_and_ranges():
    cfg = AnalysisConfig.model_validate({})
    assert (cfg.prior_mu, cfg.prior_tau, cfg.sampler.chains, cfg.sampler.seed) == (
        "normal:0:1",
        "halfnormal:0.5",
        4,
        20150703,
    )
    assert errors_of(BiasSetting, {"inflation": 0.5}) == [(("inflation",), "greater_than_equal")]
    assert errors_of(AnalysisConfig, {"sampler": {"chains": 17}}) == [
        (("sampler", "chains"), "less_than_equal")
    ]


def test_certainty_override_date_and_rating():
    good = {"outcome": "hope", "rating": "very_low", "reason": "r", "by": "b", "date": "2024-03-01"}
    CertaintyOverrides.model_validate({"overrides": [good]})
    assert errors_of(
        CertaintyOverrides, {"overrides": [{**good, "date": "March 2024", "rating": "bad"}]}
    ) == [
        (("overrides", 0, "rating"), "literal_error"),
        (("overrides", 0, "date"), "string_pattern_mismatch"),
    ]


# --------------------------------------------------------------------------- harmonised effects


def test_harmonised_defaults_to_false_and_must_be_a_bool():
    assert EffectResult.model_validate(effect()).harmonised is False
    assert errors_of(EffectResult, effect(harmonised="yes")) == [(("harmonised",), "bool_type")]


def test_harmonised_effect_is_taken_as_positive_means_benefit():
    # BPRS is lower-is-better, but a harmonised SMD is already signed so that positive = benefit
    result = EffectResult.model_validate(effect(instrument="BPRS", harmonised=True))
    assert resolve_direction(result, outcome()) == ("higher_is_better", None)
    assert measure_route(result, outcome()).error is None


def test_unharmonised_effect_takes_the_instruments_direction():
    result = EffectResult.model_validate(effect(instrument="bprs"))  # aliases match case-insensitively
    assert resolve_direction(result, outcome()) == ("lower_is_better", None)


def test_harmonised_overrides_an_unmapped_instrument():
    result = EffectResult.model_validate(effect(instrument="Unknown Scale", harmonised=True))
    assert resolve_direction(result, outcome()) == ("higher_is_better", None)
    plain = EffectResult.model_validate(effect(instrument="Unknown Scale"))
    direction, problem = resolve_direction(plain, outcome())
    assert direction is None and problem.startswith("instrument 'Unknown Scale' is not mapped")


def _single_row(result_data: dict, rob: str = "low") -> dict:
    record = spare_record_data()
    record["risk_of_bias"]["overall"] = rob
    record["results"] = [result_data]
    rec = Record.model_validate(record)
    (row,) = record_rows("spare2020", rec, {"symptoms": outcome()})
    return row


@pytest.mark.parametrize(("harmonised", "yi"), [(True, -0.3), (False, 0.3)])
def test_harmonised_sign_in_the_table(harmonised, yi):
    row = _single_row(effect(instrument="BPRS", harmonised=harmonised))
    assert row["included"], row["reason"]
    assert row["yi"] == pytest.approx(yi)
    assert row["yi_reported"] == pytest.approx(-0.3)  # the study's own scale, either way


# --------------------------------------------------------------------------- per-result risk of bias


def test_result_risk_of_bias_defaults_to_none():
    assert EffectResult.model_validate(effect()).risk_of_bias is None


@pytest.mark.parametrize("level", ["low", "some_concerns", "high", "unclear", "not_assessed"])
def test_result_risk_of_bias_levels(level):
    assert EffectResult.model_validate(effect(risk_of_bias=level)).risk_of_bias == level


@pytest.mark.parametrize("level", ["medium", "High", "", 1])
def test_result_risk_of_bias_rejects_other_values(level):
    kinds = errors_of(EffectResult, effect(risk_of_bias=level))
    assert kinds == [(("risk_of_bias",), "literal_error")]


@pytest.mark.parametrize(("result_rob", "rob"), [("high", "high"), (None, "low")])
def test_result_risk_of_bias_overrides_the_record(result_rob, rob):
    assert _single_row(effect(instrument="BPRS", risk_of_bias=result_rob), rob="low")["rob"] == rob


def test_record_risk_of_bias_needs_tool_and_assessor():
    data = spare_record_data()
    data["risk_of_bias"] = {"overall": "low"}
    assert sorted(errors_of(Record, data)) == [
        (("risk_of_bias", "assessed_by"), "missing"),
        (("risk_of_bias", "tool"), "missing"),
    ]


def test_spare_record_data_is_a_fresh_copy():
    one = spare_record_data()
    two = copy.deepcopy(one)
    one["results"].clear()
    assert spare_record_data() == two


# --------------------------------------------------------------------------- not_obtained

SEARCHED = [{"date": "2026-12-06", "route": "registry results page", "result": "no results posted"}]


def not_obtained(**changes) -> dict:
    data = {
        "outcome": "hope",
        "timepoint": "6 months",
        "form": "not_obtained",
        "reason": "Per-arm means are in Table 3 of the full text, which was not reached",
        "finding": "hope improved",
        "searched": copy.deepcopy(SEARCHED),
        "source": dict(SOURCE),
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def record_with(result: dict) -> dict:
    data = spare_record_data()
    data["results"] = [result]
    return data


def test_not_obtained_parses_apart_from_not_reported():
    record = Record.model_validate(record_with(not_obtained()))
    (result,) = record.results
    assert isinstance(result, NotObtained) and not isinstance(result, NotReported)
    assert result.searched[0].route == "registry results page"
    assert result.finding == "hope improved"


@pytest.mark.parametrize(
    ("changes", "loc", "kind"),
    [
        ({"searched": None}, ("searched",), "missing"),
        ({"searched": []}, ("searched",), "too_short"),
        ({"reason": None}, ("reason",), "missing"),
        (
            {"searched": [{"date": "6 Dec 2026", "route": "r", "result": "x"}]},
            ("searched", 0, "date"),
            "string_pattern_mismatch",
        ),
        ({"searched": [{"date": "2026-12-06", "route": "r"}]}, ("searched", 0, "result"), "missing"),
        (
            {"searched": [{"date": "2026-12-06", "route": "", "result": "x"}]},
            ("searched", 0, "route"),
            "string_too_short",
        ),
    ],
)
def test_not_obtained_needs_what_was_tried(changes, loc, kind):
    errors = errors_of(Record, record_with(not_obtained(**changes)))
    assert errors == [(("results", 0, "not_obtained", *loc), kind)]


def test_not_reported_takes_no_search_log():
    """`searched:` belongs to not_obtained only: a study that did not report has nothing to search."""
    data = not_obtained(form="not_reported")
    assert errors_of(Record, record_with(data)) == [
        (("results", 0, "not_reported", "searched"), "extra_forbidden")
    ]


def test_table_rows_tell_not_obtained_from_not_reported():
    outcomes = {"hope": outcome(id="hope")}
    obtained = Record.model_validate(record_with(not_obtained()))
    reported = Record.model_validate(record_with(not_obtained(form="not_reported", searched=None)))
    (row_obtained,) = record_rows("spare2020", obtained, outcomes)
    (row_reported,) = record_rows("spare2020", reported, outcomes)
    assert (row_obtained["form"], row_obtained["included"]) == ("not_obtained", False)
    assert row_obtained["reason"] == "not obtained: " + not_obtained()["reason"]
    assert (row_reported["form"], row_reported["included"]) == ("not_reported", False)
    assert row_reported["reason"].startswith("not reported: ")


def test_not_obtained_in_a_review_is_accepted(tmp_path):
    data = record_with(not_obtained())
    data["design"] = "systematic_review"
    data["review"] = {"sign_convention": "positive favours peer support", "source": SOURCE}
    root = make_project(tmp_path)
    write(root, "extraction/spare2020.yaml", dump_yaml(data))
    assert problems(root) == []


# --------------------------------------------------------------------------- SMD (d) with arm sizes

METAFOR_SMD_FROM_D = json.loads((DATA / "metafor_smd_from_d.json").read_text("utf-8"))


@pytest.mark.parametrize("i", range(len(METAFOR_SMD_FROM_D["di"])))
def test_smd_from_d_matches_metafor(i):
    """Cohen's d with arm sizes enters as escalc(measure="SMD", di=, n1i=, n2i=) (metafor 3.8.1)."""
    ref = METAFOR_SMD_FROM_D
    result = EffectResult.model_validate(
        effect(
            estimate=ref["di"][i],
            ci_low=None,
            ci_high=None,
            n_intervention=int(ref["n1i"][i]),
            n_control=int(ref["n2i"][i]),
        )
    )
    yi, vi, note = effect_of(result, measure_route(result, outcome()))
    assert yi == pytest.approx(ref["yi"][i], rel=1e-12)
    assert vi == pytest.approx(ref["vi"][i], rel=1e-12)
    assert "Cohen's d" in note


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_intervention": 145}, "give both n_intervention and n_control, or neither"),
        (
            {"measure": "MD", "n_intervention": 145, "n_control": 151},
            "arm sizes stand in for a CI only for an SMD, not for MD",
        ),
    ],
)
def test_smd_arm_size_rules(changes, message):
    assert messages_of(EffectResult, effect(ci_low=None, ci_high=None, **changes)) == [message]


def test_smd_with_a_ci_keeps_using_the_ci():
    """Arm sizes beside a CI only describe the sample; the CI gives the variance."""
    result = EffectResult.model_validate(effect(n_intervention=145, n_control=151))
    with_ci = EffectResult.model_validate(effect())
    assert (
        effect_of(result, measure_route(result, outcome()))[:2]
        == effect_of(with_ci, measure_route(with_ci, outcome()))[:2]
    )


def test_arm_sizes_are_refused_beside_a_correlation():
    data = effect(measure="r", estimate=0.3, ci_low=None, ci_high=None, n=50, n_intervention=25, n_control=25)
    assert messages_of(EffectResult, data) == ["arm sizes stand in for a CI only for an SMD, not for r"]
