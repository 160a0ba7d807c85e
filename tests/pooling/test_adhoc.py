"""`pool` and `pool-many`: input formats, the documented JSON shape, errors, executors (Dask)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from peerevidence.errors import DataError
from peerevidence.pooling.adhoc import Job, effects_from_frame, read_csv, run_job, run_many
from peerevidence.records.schema import SamplerSettings
from peerevidence.stats.model import Priors
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior

BCG_COUNTS = """study,ai,bi,ci,di
Aronson,4,119,11,128
Ferguson,6,300,29,274
Rosenthal60,3,228,11,209
Hart,62,13536,248,12619
Frimodt,33,5036,47,5761
Stein,180,1361,372,1079
Vandiviere,8,2537,10,619
Madras,505,87886,499,87892
Coetzee,29,7470,45,7232
Rosenthal61,17,1699,65,1600
Comstock74,186,50448,141,27197
ComstockW,5,2493,3,2338
Comstock76,27,16886,29,17825
"""
KEYS = [
    "k",
    "measure",
    "mu",
    "tau",
    "theta_new",
    "p_mu_gt_0",
    "theta",
    "diagnostics",
    "exact",
    "reml",
    "priors",
]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    code = "from peerevidence.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def test_raw_binary_columns_give_metafor_log_rr(tmp_path, bcg):
    frame = read_csv(write(tmp_path, "bcg.csv", BCG_COUNTS))
    data, measure = effects_from_frame(frame, "RR", "bcg.csv")
    assert measure == "RR"
    np.testing.assert_allclose(data.yi, bcg[0], atol=1e-12)
    np.testing.assert_allclose(data.vi, bcg[1], atol=1e-12)


def test_totals_columns_and_continuous_columns(tmp_path):
    frame = read_csv(write(tmp_path, "t.csv", "study,ai,n1i,ci,n2i\nCORE,64,218,83,216\n"))
    data, measure = effects_from_frame(frame, None, "t.csv")
    assert measure == "OR" and data.yi[0] == pytest.approx(np.log(64 * 133 / (154 * 83)))
    frame = read_csv(write(tmp_path, "c.csv", "study,m1i,sd1i,n1i,m2i,sd2i,n2i\nA,57,16,218,55,16,216\n"))
    data, measure = effects_from_frame(frame, None, "c.csv")
    assert measure == "SMD" and data.yi[0] == pytest.approx(0.12478286045165, abs=2e-4)


@pytest.mark.parametrize(
    "text, message",
    [
        ("study,yi,vi\nA,0.1,0\n", "c.csv: row 2: vi: must be > 0 (got 0)"),
        ("study,yi,vi\nA,nan,0.1\n", "c.csv: row 2: yi: must be finite (got 'nan')"),
        ("study,yi,vi\nA,x,0.1\n", "c.csv: row 2: yi: not a number (got 'x')"),
        ("study,yi\nA,0.1\n", "c.csv: need columns yi,vi or"),
        ("name,yi,vi\nA,0.1,0.2\n", "c.csv: missing column 'study'"),
        ("study,yi,vi\n", "c.csv: no studies"),
        ("study,ai,n1i,ci,n2i\nA,30,20,1,10\n", "c.csv: row 2: ai: events (30) exceed n1i (20)"),
        ("study,ai,bi,ci,di\nA,-1,2,3,4\n", "c.csv: row 2: ai: must be >= 0 (got -1)"),
    ],
)
def test_bad_csv_gives_one_clear_line(tmp_path, text, message):
    with pytest.raises(DataError) as info:
        effects_from_frame(read_csv(write(tmp_path, "c.csv", text)), None, "c.csv")
    assert str(info.value).startswith(message)


def test_bad_csv_through_the_cli_exits_1_without_traceback(tmp_path):
    path = write(tmp_path, "bad.csv", "study,yi,vi\nA,1,-2\n")
    proc = cli("pool", str(path), "--json")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.strip() == f"{path}: row 2: vi: must be > 0 (got -2)"
    missing = cli("pool", str(tmp_path / "nope.csv"))
    assert missing.returncode == 1 and "file not found" in missing.stderr
    assert "Traceback" not in missing.stderr + proc.stderr
    usage = cli("pool", str(path), "--prior-tau", "gamma:2")
    assert usage.returncode == 2 and "accepted:" in usage.stderr


@pytest.mark.slow
def test_pool_json_has_exactly_the_documented_keys(tmp_path, metafor_ref):
    d = metafor_ref["eight_schools"]
    rows = "".join(f"{s},{y},{v}\n" for s, y, v in zip(d["study"], d["yi"], d["vi"], strict=True))
    path = write(tmp_path, "es.csv", "study,yi,vi\n" + rows)
    proc = cli(
        "pool",
        str(path),
        "--json",
        "--prior-mu",
        "normal:0:100",
        "--prior-tau",
        "halfcauchy:25",
        "--draws",
        "500",
        "--seed",
        "3",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert list(out) == KEYS
    assert set(out["mu"]) == set(out["tau"]) == {"mean", "sd", "q025", "q50", "q975"}
    assert set(out["theta_new"]) == {"mean", "sd", "q025", "q975"}
    assert set(out["diagnostics"]) == {
        "rhat_max",
        "ess_bulk_min",
        "ess_tail_min",
        "divergences",
        "exact_max_sd_discrepancy",
    }
    assert set(out["exact"]) == {"mu", "tau", "theta_new", "p_mu_gt_0"}
    assert set(out["reml"]) == {
        "mu", "se", "ci_lb", "ci_ub", "tau2", "i2", "pi_lb", "pi_ub",
        "hksj_se", "hksj_ci_lb", "hksj_ci_ub", "hksj_df", "pi_t_lb", "pi_t_ub",
        "tau2_qp_lb", "tau2_qp_ub", "i2_qp_lb", "i2_qp_ub",
    }  # fmt: skip
    assert out["priors"] == {"mu": "normal:0:100", "tau": "halfcauchy:25"}
    assert [t["study"] for t in out["theta"]] == d["study"]
    assert out["k"] == 8 and out["measure"] == "GEN"
    assert out["reml"]["mu"] == pytest.approx(d["REML"]["mu"], abs=1e-6)
    assert out["diagnostics"]["divergences"] == 0


def jobs(n: int, seed: int = 5) -> list[Job]:
    rng = np.random.default_rng(1)
    priors = Priors(parse_mu_prior("normal:0:1"), parse_tau_prior("halfnormal:0.5"))
    out = []
    for i in range(n):
        k = 4 + i
        from peerevidence.stats.model import FitData

        data = FitData(tuple(f"s{j}" for j in range(k)), rng.normal(0.2, 0.3, k), rng.uniform(0.02, 0.1, k))
        out.append(Job(f"a{i}", data, priors, SamplerSettings(draws=200, tune=200, seed=seed)))
    return out


@pytest.mark.slow
def test_pool_many_cli_jsonl_csv_and_out_file(tmp_path):
    lines = ["analysis,study,yi,vi"]
    for a, (y, v) in {
        "first": ([0.1, 0.3, 0.2], [0.04, 0.05, 0.03]),
        "second": ([0.5, 0.4], [0.1, 0.2]),
    }.items():
        lines += [f"{a},s{i},{yy},{vv}" for i, (yy, vv) in enumerate(zip(y, v, strict=True))]
    path = write(tmp_path, "long.csv", "\n".join(lines) + "\n")
    proc = cli("pool-many", str(path), "--draws", "200")
    assert proc.returncode == 0, proc.stderr
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["analysis"] for o in objs] == ["first", "second"]
    assert list(objs[0]) == ["analysis", *KEYS]
    assert [o["k"] for o in objs] == [3, 2]
    out = tmp_path / "out.csv"
    proc = cli("pool-many", str(path), "--draws", "200", "--format", "csv", "--out", str(out))
    assert proc.returncode == 0 and proc.stdout == ""
    header, *rows = out.read_text().splitlines()
    assert header.startswith("analysis,k,measure,mu_mean,mu_sd,mu_q025")
    assert len(rows) == 2


@pytest.mark.slow
def test_local_process_pool_gives_the_same_results_as_in_process():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    batch = jobs(3)
    serial = list(run_many(batch))
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        parallel = list(run_many(batch, pool))
    assert [r.summary.mu for r in parallel] == [r.summary.mu for r in serial]


@pytest.mark.slow
def test_dask_local_cluster_runs_the_same_batch():
    distributed = pytest.importorskip("dask.distributed")
    batch = jobs(2)
    serial = [run_job(j) for j in batch]
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = list(run_many(batch, client.get_executor()))
    assert [r.name for r in remote] == ["a0", "a1"]
    assert [r.summary.mu for r in remote] == [r.summary.mu for r in serial]


def test_pool_json_projection_drops_internal_fields():
    """to_dict() is a projection of the stored summary: provenance, notes and the exact
    check's internals (exact_ok, tolerances) are not part of ``pool --json``."""
    from peerevidence.stats.summary import FitSummary

    stored = {
        "k": 1,
        "measure": "SMD",
        "mu": {"mean": 0, "sd": 1, "q025": -2, "q50": 0, "q975": 2},
        "tau": {"mean": None, "sd": None, "q025": 0, "q50": 1, "q975": 2, "undefined": "heavy tail"},
        "theta_new": {"mean": 0, "sd": 1, "q025": -2, "q975": 2},
        "p_mu_gt_0": 0.5,
        "theta": [{"study": "a", "mean": 0, "sd": 1, "q025": -2, "q975": 2}],
        "diagnostics": {
            "rhat_max": 1,
            "ess_bulk_min": 1,
            "ess_tail_min": 1,
            "divergences": 0,
            "exact_max_sd_discrepancy": 0,
            "exact_max_z": 0,
            "exact_worst": "mu.q50",
            "exact_ok": True,
            "tolerance_sd": 0.1,
            "tolerance_z": 5.0,
        },
        "exact": {
            "mu": {"mean": 0, "sd": 1, "q025": -2, "q50": 0, "q975": 2},
            "tau": {"mean": 0, "sd": 1, "q025": 0, "q50": 1, "q975": 2},
            "theta_new": {"mean": 0, "sd": 1, "q025": -2, "q975": 2},
            "p_mu_gt_0": 0.5,
        },
        "reml": {k: 0 for k in ("mu", "se", "ci_lb", "ci_ub", "tau2", "i2", "pi_lb", "pi_ub")},
        "priors": {"mu": "normal:0:1", "tau": "halfnormal:0.5"},
        "notes": ["x"],
        "key": "abc",
        "model_version": "m",
        "sampler": {},
        "versions": {},
        "data": {},
    }
    summary = FitSummary.from_json(stored)
    assert summary.to_json() == stored  # the stored form round-trips exactly
    out = summary.to_dict()
    assert list(out) == KEYS and "undefined" not in out["tau"] and "exact_ok" not in out["diagnostics"]
    assert "notes" not in out and "key" not in out
