"""pool-many: one analysis never sinks a batch; exact-only engine; workers only when worth it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from peerevidence.pooling.adhoc import (
    MIN_JOBS_PER_WORKER,
    Job,
    effective_workers,
    pool_many,
    run_job,
)
from peerevidence.records.schema import SamplerSettings
from peerevidence.stats.exact import exact_posterior
from peerevidence.stats.model import FitData, Priors, fit
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior

PRIORS = Priors(parse_mu_prior("normal:0:1"), parse_tau_prior("halfnormal:0.5"))


def _job(name: str, k: int, seed: int = 1, **tolerance) -> Job:
    rng = np.random.default_rng(seed)
    data = FitData(tuple(f"s{i}" for i in range(k)), rng.normal(0.2, 0.3, k), rng.uniform(0.02, 0.1, k))
    return Job(name, data, PRIORS, SamplerSettings(seed=seed), **tolerance)


def test_exact_engine_gives_the_quadrature_summaries_without_sampling():
    job = _job("a", 6)
    result = run_job(job, engine="exact")
    assert result.ok and result.summary is None
    d = result.to_dict()
    assert d["analysis"] == "a" and d["engine"] == "exact" and d["k"] == 6
    post = exact_posterior(job.data.yi, job.data.vi, PRIORS.mu, PRIORS.tau)
    assert d["exact"]["mu"]["mean"] == pytest.approx(post.mu().mean, abs=1e-12)
    assert d["exact"]["tau"]["q50"] == pytest.approx(post.tau_summary().q50, abs=1e-12)


def test_a_broken_analysis_is_reported_in_its_own_row_and_the_batch_finishes():
    empty = Job("broken", FitData((), np.zeros(0), np.zeros(0)), PRIORS, SamplerSettings())
    text, failed = pool_many([_job("a", 3), empty, _job("b", 4)], engine="exact")
    rows = [json.loads(line) for line in text.splitlines()]
    assert [r["analysis"] for r in rows] == ["a", "broken", "b"]
    assert rows[1] == {"analysis": "broken", "error": rows[1]["error"]}
    assert "ValueError" in rows[1]["error"]
    assert [f.name for f in failed] == ["broken"]
    assert "exact" in rows[0] and "exact" in rows[2]


def test_csv_rows_of_a_batch_with_a_failure_share_one_header():
    empty = Job("broken", FitData((), np.zeros(0), np.zeros(0)), PRIORS, SamplerSettings())
    text, _failed = pool_many([_job("a", 3), empty], fmt="csv", engine="exact")
    header, *rows = text.splitlines()
    assert header.split(",")[0] == "analysis" and "error" in header.split(",")
    assert len(rows) == 2 and rows[1].startswith("broken,")


def test_workers_are_started_only_for_batches_that_repay_them():
    assert effective_workers(5, 4) == 1
    assert effective_workers(MIN_JOBS_PER_WORKER * 2, 4) == 2
    assert effective_workers(MIN_JOBS_PER_WORKER * 10, 4) == 4
    assert effective_workers(1000, 1) == 1


@pytest.mark.slow
def test_failing_exact_check_is_resampled_then_reported_with_its_reason():
    """Tolerances no fit can meet: the fit is sampled again (twice the draws) and then
    reported as failed, with the reason in its row."""
    job = _job("strict", 5, tolerance_sd=1e-12, tolerance_z=1e-12)
    result = fit(job.data, job.priors, job.sampler, None, job.tolerance_sd, job.tolerance_z)
    assert result.idata.posterior.attrs["resampled_for_exact_check"] == 1
    assert result.idata.posterior.sizes["draw"] == 2 * job.sampler.draws
    text, failed = pool_many([_job("fine", 4), job])
    rows = [json.loads(line) for line in text.splitlines()]
    assert [f.name for f in failed] == ["strict"]
    assert "error" not in rows[0] and rows[1]["error"].startswith("exact check failed after re-sampling")
    assert rows[1]["k"] == 5  # the failed fit's numbers are still reported
