"""How a reported result becomes an outcome's pooling measure, and which direction is benefit.

Used by validation (a result that cannot be pooled is an error) and by the evidence table
(the route and sign of each row).
"""

from __future__ import annotations

from dataclasses import dataclass

from peerevidence.records.schema import Outcome, Result

_ROUTES: dict[str, dict[str, tuple[str, str | None]]] = {
    # pool measure -> {data kind: (route name, conversion needed)}
    "SMD": {
        "continuous": ("smd", None),
        "effect:SMD": ("se_or_ci", None),
        "effect:OR": ("or_to_smd", "logOR_to_SMD"),
        "binary": ("2x2_to_smd", "logOR_to_SMD"),
    },
    "MD": {"continuous": ("md", None), "effect:MD": ("se_or_ci", None)},
    "logOR": {
        "binary": ("log_or", None),
        "effect:OR": ("log_ci", None),
        "effect:SMD": ("smd_to_or", "SMD_to_logOR"),
    },
    "logRR": {"binary": ("log_rr", None), "effect:RR": ("log_ci", None)},
    "logHR": {"effect:HR": ("log_ci", None)},
    "fisher_z": {"effect:r": ("fisher_z", None)},
}


@dataclass(frozen=True)
class Route:
    name: str | None
    conversion: str | None
    error: str | None = None


def _kind(result: Result) -> str:
    return f"effect:{result.measure}" if result.form == "effect" else result.form


def _kind_words(kind: str) -> str:
    if kind.startswith("effect:"):
        return f"a reported {kind.split(':')[1]}"
    return {"continuous": "arm-level means and SDs", "binary": "arm-level event counts"}.get(kind, kind)


def measure_route(result: Result, outcome: Outcome) -> Route:
    """How a result becomes the outcome's pooling measure, or why it cannot."""
    kind = _kind(result)
    options = _ROUTES[outcome.measure]
    if kind not in options:
        accepted = ", ".join(_kind_words(k) for k in sorted(options))
        return Route(
            None,
            None,
            f"{_kind_words(kind)} cannot give the {outcome.measure} that outcome "
            f"'{outcome.id}' pools (accepted: {accepted})",
        )
    name, conversion = options[kind]
    if conversion is not None and conversion not in outcome.conversions:
        return Route(
            None,
            None,
            f"{_kind_words(kind)} need the conversion {conversion} (Chinn 2000); "
            f"declare `conversions: [{conversion}]` on outcome '{outcome.id}' "
            "in evidence/outcomes.yaml if it is acceptable",
        )
    return Route(name, conversion)


def resolve_direction(result: Result, outcome: Outcome) -> tuple[str | None, str | None]:
    """The direction of benefit for this result and, if it cannot be known, why not."""
    if getattr(result, "harmonised", False):
        return "higher_is_better", None
    mapped = None
    if result.instrument:
        wanted = result.instrument.casefold().strip()
        for inst in outcome.instruments:
            if wanted in {n.casefold().strip() for n in (inst.name, *inst.aliases)}:
                mapped = inst.direction
                break
    if result.direction and mapped and result.direction != mapped:
        return None, (
            f"direction '{result.direction}' contradicts '{mapped}' given for "
            f"instrument '{result.instrument}' in evidence/outcomes.yaml"
        )
    if result.direction:
        return result.direction, None
    if mapped:
        return mapped, None
    scale_based = result.form == "continuous" or (result.form == "effect" and result.measure in ("MD", "SMD"))
    if scale_based:
        known = ", ".join(i.name for i in outcome.instruments) or "none"
        if not result.instrument:
            return None, (
                "no instrument given, so the direction of benefit is unknown; name the "
                f"instrument (mapped for '{outcome.id}': {known}) or give `direction:`"
            )
        return None, (
            f"instrument '{result.instrument}' is not mapped for outcome '{outcome.id}' "
            f"in evidence/outcomes.yaml (mapped: {known}); map it there with its "
            "direction, or give `direction:` in this result"
        )
    return outcome.direction, None
