"""The exact-quadrature reference as its own process: read a yi/vi CSV, print the exact
posterior's summaries (mu, tau, theta_new) as JSON. Used by the `fresh` benchmark section.

    python benchmarks/oracle.py FILE.csv
"""

from __future__ import annotations

import csv
import json
import sys

import numpy as np

from peerevidence.stats.exact import exact_posterior, summarise
from peerevidence.stats.priors import parse_mu_prior, parse_tau_prior


def main(path: str) -> None:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    y = np.array([float(r["yi"]) for r in rows])
    v = np.array([float(r["vi"]) for r in rows])
    post = exact_posterior(y, v, parse_mu_prior("normal:0:1"), parse_tau_prior("halfnormal:0.5"))
    print(json.dumps(summarise(post, with_theta=False)))


if __name__ == "__main__":
    main(sys.argv[1])
