"""Plain-language statements of a result, in GRADE's informative-statement style.

The rule (Santesso et al. 2020, GRADE guidelines 26, J Clin Epidemiol 119:126-135, Table 2),
as a pure function of the pooled effect, the minimal important difference (MID) and the
certainty of the evidence:

* Size, from the posterior median ``effect`` on the harmonised scale (positive = benefit)
  against the outcome's MID on the same scale:
  ``|effect| < MID`` -> *little or no difference*;
  ``MID <= |effect| < 2.5 x MID`` -> a *slight* effect;
  ``|effect| >= 2.5 x MID`` -> an effect (no qualifier).
  (With the default MID of 0.2 SMD these cut at Cohen's 0.2 and 0.5.)
* Direction: a benefit *improves* an outcome where higher is better and *reduces* one where
  lower is better; a harm *worsens* / *increases* it.
* Certainty sets the verb's hedge: high -> none ("reduces"), moderate -> "probably",
  low -> "may"; very low -> "The evidence is very uncertain about the effect of <I> on <X>."
"""

from __future__ import annotations

SLIGHT_UPPER = 2.5  # multiples of the MID below which an important effect is "slight"
HEDGE = {"high": "", "moderate": "probably ", "low": "may "}
SYMBOLS = {
    "high": "⊕⊕⊕⊕",
    "moderate": "⊕⊕⊕◯",
    "low": "⊕⊕◯◯",
    "very_low": "⊕◯◯◯",
}
WORDS = {"high": "High", "moderate": "Moderate", "low": "Low", "very_low": "Very low"}


def size(effect: float, mid: float) -> str:
    """'trivial', 'slight' or 'important', from ``|effect|`` against the MID."""
    if mid <= 0:
        raise ValueError(f"the MID must be positive (got {mid})")
    magnitude = abs(effect)
    if magnitude < mid:
        return "trivial"
    if magnitude < SLIGHT_UPPER * mid:
        return "slight"
    return "important"


def _lower_first(text: str) -> str:
    """'Psychiatric readmission' -> 'psychiatric readmission'; 'BCG scar' stays."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def statement(
    intervention: str,
    outcome: str,
    effect: float,
    mid: float,
    certainty: str,
    lower_is_better: bool = False,
) -> str:
    """One sentence saying what the evidence shows and how sure we are.

    >>> statement("peer support", "Hope", 0.3, 0.2, "moderate")
    'Peer support probably improves hope slightly.'
    >>> statement("peer support", "Readmission", 0.05, 0.2, "low", lower_is_better=True)
    'Peer support may make little or no difference to readmission.'
    """
    if certainty not in SYMBOLS:
        raise ValueError(f"unknown certainty {certainty!r} (accepted: {', '.join(SYMBOLS)})")
    x = _lower_first(outcome)
    if certainty == "very_low":
        return f"The evidence is very uncertain about the effect of {intervention} on {x}."
    hedge = HEDGE[certainty]
    how = size(effect, mid)
    if how == "trivial":
        verb = "make" if hedge == "may " else "makes"
        return _upper_first(f"{intervention} {hedge}{verb} little or no difference to {x}.")
    benefit = effect > 0
    verb = ("reduce" if benefit else "increase") if lower_is_better else "improve" if benefit else "worsen"
    if hedge != "may ":  # "reduces", "probably reduces", but "may reduce"
        verb += "s"
    slightly = " slightly" if how == "slight" else ""
    return _upper_first(f"{intervention} {hedge}{verb} {x}{slightly}.")


def certainty_label(level: str) -> str:
    """'⊕⊕⊕◯ Moderate' for GRADE's symbols and words."""
    return f"{SYMBOLS[level]} {WORDS[level]}"
