"""Which threshold checks a hop computed on one hardware class by a verifier on another.

Honest rounding differs by hardware: two CPUs (thread counts, batch shapes) differ by about
2e-6 per position, while a GPU in float32 with TF32 matrix products, or in bf16, differs from
a CPU by far more. So the tolerance rule is keyed on the pair (node class, verifier class)
and the model's precision. A pair has a threshold only once it has been measured
(``bench/detection.py`` on both classes, as ``bench/gpu_check.sh`` runs it); a pair with no
measured rule is one this verifier cannot check faithfully, and it leaves the hop to a
verifier of a class that can (``Rule.threshold`` is None) rather than guessing.

``calibrate`` turns measured score distributions into a rule: the threshold sits
``CHEAT_MARGIN`` times below the mildest cheat, and is accepted only if it also sits at
least ``HONEST_MARGIN`` times above the worst honest score; a pair whose distributions are
closer than that has no rule.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sharedllm.verifier.tolerance import DEFAULT_THRESHOLD

HONEST_MARGIN = 50.0  # the threshold over the worst honest score, at least
CHEAT_MARGIN = 10.0  # the mildest cheat over the threshold, at least


@dataclass(frozen=True)
class Rule:
    """How a verifier of class ``verifier`` checks a hop of class ``node`` for models of
    ``precision`` (shell patterns: ``cuda-*``, ``*``). ``threshold`` None: not faithfully."""

    node: str
    verifier: str
    precision: str
    threshold: float | None
    basis: str  # where the figure comes from, or why there is none
    tf32: bool = False  # whether the node's float32 products may use TF32 (nodes turn it off)

    def matches(self, node: str, verifier: str, precision: str) -> bool:
        return (
            fnmatch.fnmatchcase(node, self.node)
            and fnmatch.fnmatchcase(verifier, self.verifier)
            and fnmatch.fnmatchcase(precision, self.precision)
        )


RULES: tuple[Rule, ...] = (
    Rule(
        "cpu",
        "cpu",
        "*",
        DEFAULT_THRESHOLD,
        "measured: bench/detection.py, float32 and int8 (docs/VERIFICATION.md): honest worst "
        "2e-6, mildest cheat 1.2e-2",
    ),
    Rule(
        "cuda-*",
        "*",
        "*",
        None,
        "unmeasured: no GPU run of bench/gpu_check.sh yet (docs/VERIFICATION.md)",
    ),
    Rule("*", "cuda-*", "*", None, "unmeasured: no GPU run of bench/gpu_check.sh yet"),
    Rule("mps", "*", "*", None, "unmeasured: no Apple GPU has run bench/detection.py"),
    Rule("*", "mps", "*", None, "unmeasured: no Apple GPU has run bench/detection.py"),
)


def rule_for(node: str, verifier: str, precision: str, rules: Sequence[Rule] = RULES) -> Rule:
    """The first rule that matches; a pair no rule names cannot be checked faithfully."""
    for rule in rules:
        if rule.matches(node, verifier, precision):
            return rule
    return Rule(node, verifier, precision, None, "no rule names this pair")


def calibrate(
    node: str,
    verifier: str,
    precision: str,
    honest: Sequence[float],
    cheats: dict[str, Sequence[float]],
) -> Rule:
    """A rule from measured worst-position scores: ``honest`` checks of the pair, and each
    cheat mode's checks. No rule (threshold None) when the two are not far enough apart."""
    if not honest or not cheats or not all(cheats.values()):
        return Rule(node, verifier, precision, None, "calibration needs honest and cheat scores")
    worst = max(honest)
    mildest_mode, mildest = min(((m, min(s)) for m, s in cheats.items()), key=lambda x: x[1])
    if not all(math.isfinite(x) and x >= 0 for x in (worst, mildest)):
        return Rule(node, verifier, precision, None, "calibration scores must be finite")
    threshold = mildest / CHEAT_MARGIN
    basis = (
        f"calibrated: honest worst {worst:.2g} over {len(honest)} checks, mildest cheat "
        f"{mildest:.2g} ({mildest_mode})"
    )
    if threshold < HONEST_MARGIN * worst:
        return Rule(node, verifier, precision, None, f"{basis}: too close to separate")
    return Rule(node, verifier, precision, threshold, basis)
