"""View models of the HTML report, one module per page.

* :mod:`.common` — formatting, scales, the :class:`~.common.Context` every view is built
  from, and the views several pages share (an analysis, its certainty and sensitivity).
* :mod:`.sof` — the Summary of Findings (index page and CSV).
* :mod:`.index` — the index page.
* :mod:`.outcome` — an outcome page (and its forest plot's data).
* :mod:`.references` — the references page.

Views only read the run and its :class:`~peerevidence.synthesis.Synthesis`; drawing stays in
:mod:`peerevidence.report.forest` and :mod:`peerevidence.report.diagram`, writing in
:mod:`peerevidence.report.render`.
"""
