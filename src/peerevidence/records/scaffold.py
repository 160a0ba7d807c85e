"""``peerevidence init DIR``: a new evidence base that validates and runs at once.

It writes a change model with one intervention node and one outcome node, one outcome, a
worked example record, ``references.bib``, ``evidence/analysis.yaml``,
``evidence/outcomes.yaml`` and a README stub. The example record's numbers are real, with
their source: trial 1 of metafor's ``dat.bcg`` (Aronson 1948: 4 of 123 vaccinated and 11
of 139 unvaccinated participants developed tuberculosis), as tabulated by Colditz et al.
1994 (Table 1) and distributed with metafor (Viechtbauer 2010). Replace it with your own.
"""

from __future__ import annotations

import re
from pathlib import Path

from peerevidence.atomic import write_text
from peerevidence.errors import UsageError

DEFAULT_INTERVENTION = "the intervention"
DEFAULT_COMPARATOR = "the comparator"


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.casefold()).strip("_")
    if not slug or not slug[0].isalpha():
        slug = "x_" + slug if slug else "intervention"
    return slug[:40].rstrip("_")


def _q(text: str) -> str:
    """A YAML double-quoted scalar."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


BIB = """\
@article{aronson1948,
  author = {Aronson, Joseph D.},
  title = {Protective vaccination against tuberculosis with special reference to BCG vaccination},
  journal = {American Review of Tuberculosis},
  year = {1948},
  volume = {58},
  number = {3},
  pages = {255--281},
}

@article{colditz1994,
  author = {Colditz, Graham A. and Brewer, Timothy F. and Berkey, Catherine S. and Wilson, Mary E. and Burdick, Elisabeth and Fineberg, Harvey V. and Mosteller, Frederick},
  title = {Efficacy of {BCG} vaccine in the prevention of tuberculosis: meta-analysis of the published literature},
  journal = {JAMA},
  year = {1994},
  volume = {271},
  number = {9},
  pages = {698--702},
  doi = {10.1001/jama.1994.03510330076038},
}

@article{viechtbauer2010,
  author = {Viechtbauer, Wolfgang},
  title = {Conducting meta-analyses in {R} with the metafor package},
  journal = {Journal of Statistical Software},
  year = {2010},
  volume = {36},
  number = {3},
  pages = {1--48},
  doi = {10.18637/jss.v036.i03},
  keywords = {methods},
}
"""

CHANGE_MODEL = """\
# The change model: what {intervention} is expected to change, and through what.
# Add mechanism nodes and edges as your review defines them (README: "The evidence base").
meta:
  title: {title}
  source: colditz1994
  figure_note: Drafted by `peerevidence init`; replace with how your change model was built.
  locator_convention: page, table or figure of the cited source; dataset rows as "row N"
  intervention: {intervention_q}
  comparator: {comparator_q}
  intervention_node: {node}
nodes:
  - id: {node}
    label: {label_q}
    kind: intervention
    model_source: peerevidence
  - id: primary_outcome
    label: Primary outcome
    kind: downstream_outcome
    model_source: peerevidence
edges:
  - id: E1
    from: {node}
    to: primary_outcome
    wording: {wording_q}
    locator: evidence/change_model.yaml (drafted by peerevidence init)
    source: peerevidence
    basis: [author_proposal]
"""

OUTCOMES = """\
# Outcomes: the node each measures, how it is pooled and which direction is benefit.
# The example outcome counts events (in the example record: tuberculosis cases), so fewer
# is better and it pools log risk ratios. Replace it with your outcomes.
outcomes:
  - id: primary_outcome
    label: Primary outcome (events; fewer is better)
    node: primary_outcome
    measure: logRR
    direction: lower_is_better
    edges: [E1]
"""

ANALYSIS = """\
# Priors and sampler settings (README: "Priors, and how to change them").
prior_mu: normal:0:1
prior_tau: halfnormal:0.5
sampler: {draws: 1000, tune: 1000, chains: 4, seed: 20150703}
"""

RECORD = """\
# A worked example: replace it with your own studies (`peerevidence new-record KEY`).
# Trial 1 of metafor's dat.bcg (Colditz et al. 1994, Table 1; Viechtbauer 2010).
study: aronson1948
design: rct
country: USA
setting: North American Indian reservations (as tabulated by Colditz et al. 1994)
population: Participants of the Aronson 1948 BCG vaccination trial
intervention: BCG vaccine
comparator: No vaccine
sample_size:
  intervention: 123
  control: 139
  note: tpos + tneg and cpos + cneg of dat.bcg row 1
  source:
    kind: dataset
    ref: colditz1994
    locator: "metafor dat.bcg row 1 (trial 1, Aronson 1948: tpos, tneg, cpos, cneg)"
    snippet: "1 Aronson 1948 4 119 11 128 44 random"
    url: https://rdrr.io/pkg/metadat/man/dat.bcg.html
risk_of_bias:
  tool: not formally assessed
  overall: not_assessed
  assessed_by: nobody yet (example record)
extraction:
  extracted_by: peerevidence init (example)
  checked_by: log risk ratio -0.8893 as metafor's escalc gives for this row
  date: "{date}"
notes:
  - An example of the record format; its numbers are real and sourced. Delete it once your own records are in.
results:
  - outcome: primary_outcome
    timepoint: end of follow-up
    form: binary
    event: tuberculosis (TB positive)
    intervention: {{events: 4, total: 123}}
    control: {{events: 11, total: 139}}
    source:
      kind: dataset
      ref: colditz1994
      locator: "metafor dat.bcg row 1 (tpos = 4, tneg = 119, cpos = 11, cneg = 128)"
      snippet: "1 Aronson 1948 4 119 11 128 44 random"
      url: https://rdrr.io/pkg/metadat/man/dat.bcg.html
"""

README = """\
# {title}

An evidence base for {intervention} compared with {comparator}, laid out for
[peerevidence](https://pypi.org/project/peerevidence/):

```
references.bib              every source (BibTeX)
evidence/change_model.yaml  nodes and edges of the change model
evidence/outcomes.yaml      outcomes: node measured, pooling measure, direction, instruments
evidence/analysis.yaml      priors and sampler settings
extraction/<key>.yaml       one record per study, named after its BibTeX key
```

`extraction/aronson1948.yaml` is a worked example (trial 1 of metafor's `dat.bcg`,
Colditz et al. 1994): replace it with your own studies.

```sh
peerevidence validate --project .
peerevidence new-record KEY --project .
peerevidence run --project .      # -> reports/index.html
```
"""


def init_project(
    root: Path,
    intervention: str | None = None,
    comparator: str | None = None,
    date: str = "2024-01-01",
) -> list[Path]:
    """Write a new evidence base into ``root`` (absent or empty); return the files written."""
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: exists and is not a directory")
    if root.is_dir() and any(root.iterdir()):
        raise UsageError(f"{root}: directory is not empty; `init` writes only into a new or empty directory")
    intervention = (intervention or DEFAULT_INTERVENTION).strip() or DEFAULT_INTERVENTION
    comparator = (comparator or DEFAULT_COMPARATOR).strip() or DEFAULT_COMPARATOR
    for name, value in (("--intervention", intervention), ("--comparator", comparator)):
        if any(ch in value for ch in "\r\n\t") or len(value) > 200:
            raise UsageError(f"{name}: one line of at most 200 characters, please")
    node = _slug(intervention)
    if node == "primary_outcome":
        node = "intervention"
    title = f"{intervention[:1].upper()}{intervention[1:]} versus {comparator}: evidence base"
    files = {
        "references.bib": BIB,
        "evidence/change_model.yaml": CHANGE_MODEL.format(
            intervention=intervention,
            title=_q(title),
            intervention_q=_q(intervention),
            comparator_q=_q(comparator),
            node=node,
            label_q=_q(intervention[:1].upper() + intervention[1:]),
            wording_q=_q(f"{intervention} changes the primary outcome (compared with {comparator})"),
        ),
        "evidence/outcomes.yaml": OUTCOMES,
        "evidence/analysis.yaml": ANALYSIS,
        "extraction/aronson1948.yaml": RECORD.format(date=date),
        "README.md": README.format(title=title, intervention=intervention, comparator=comparator),
    }
    written = []
    for rel, text in files.items():
        target = root / rel
        write_text(target, text)
        written.append(target)
    return written
