"""Does the verifier tell honest hops from cheating ones, and what does checking cost?

In one process: greedy answers through spans 0:10, 10:20, 20:30; per hop, the node's
step-by-step decode (1 or 2 threads) against the verifier's prefill (the other count), two
jobs verified as one batch, and every cheating mode. Prints the score distribution per class,
the threshold and margin, detection and false-positive rates, and the verifier's CPU time per
checked job against the node's (the baseline, measured in the same run).

    SHAREDLLM_HOME=.state .venv/bin/python bench/detection.py [--prompts 40] [--tokens 24]
        [--cheat-jobs 8] [--spans 0:10,10:20,20:30]
"""

from __future__ import annotations

import argparse
import time

import torch

from sharedllm.model.client_model import ClientModel
from sharedllm.model.span import SpanRunner
from sharedllm.model.store import ModelStore
from sharedllm.verifier.calibrate import Samples, calibrate, summary
from sharedllm.verifier.tolerance import TolerancePolicy

SUBJECTS = (
    "the sea", "a robot", "Paris", "prime numbers", "photosynthesis", "the moon", "coffee",
    "a lighthouse", "bicycles", "volcanoes", "the piano", "winter", "bees", "a library",
    "rain", "chess", "the internet", "a forest", "trains", "friendship",
)  # fmt: skip
TEMPLATES = ("Write one sentence about {}.", "What is interesting about {}?")
PROMPTS = tuple(t.format(s) for t in TEMPLATES for s in SUBJECTS)


def main() -> None:
    args = _parse()
    torch.manual_seed(0)
    store = ModelStore()
    manifest = store.manifest()
    client = ClientModel(store, manifest)
    spans = [tuple(int(x) for x in s.split(":")) for s in args.spans.split(",")]
    runners = [SpanRunner(store, manifest, a, b) for a, b in spans]
    policy = TolerancePolicy()
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.prompts)]
    began = time.monotonic()
    samples = calibrate(client, runners, prompts, args.tokens, policy, args.cheat_jobs)
    _report(samples, policy, time.monotonic() - began)


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=40, help="answered prompts (jobs)")
    p.add_argument("--tokens", type=int, default=24, help="max new tokens per answer")
    p.add_argument("--cheat-jobs", type=int, default=8, help="jobs per hop run in each cheat")
    p.add_argument("--spans", default="0:10,10:20,20:30")
    return p.parse_args()


def _report(samples: Samples, policy: TolerancePolicy, seconds: float) -> None:
    honest = [k for k in samples.scores if k.startswith("honest")]
    cheats = [k for k in samples.scores if k not in honest]
    print(f"\n{'class':<18}{'checks':>7}{'min':>11}{'median':>11}{'max':>11}{'flagged':>9}")
    for kind in honest + cheats:
        lo, mid, hi = summary(samples.scores[kind])
        flagged = sum(not ok for ok in samples.passed[kind])
        n = len(samples.scores[kind])
        print(f"{kind:<18}{n:>7}{lo:>11.2e}{mid:>11.2e}{hi:>11.2e}{flagged:>6}/{n}")
    worst_honest = max(max(samples.scores[k]) for k in honest)
    mildest_cheat = min(min(samples.scores[k]) for k in cheats)
    honest_checks = sum(len(samples.passed[k]) for k in honest)
    false_pos = sum(not ok for k in honest for ok in samples.passed[k])
    print(f"\nthreshold {policy.threshold:.1e} (top-k {policy.topk_threshold:.1e})")
    print(
        f"margin: threshold / worst honest = {policy.threshold / worst_honest:.0f}x, "
        f"mildest cheat / threshold = {mildest_cheat / policy.threshold:.1f}x"
    )
    print(f"false positives: {false_pos}/{honest_checks} honest checks")
    for kind in cheats:
        caught = sum(not ok for ok in samples.passed[kind])
        n = len(samples.passed[kind])
        print(f"detected {kind:<16} {caught}/{n} = {100 * caught / n:.0f}% (check probability 1)")
    ratio = samples.prefill_cpu / samples.decode_cpu
    print(
        f"verifier cost: prefill {samples.prefill_cpu:.1f} CPU s / node decode "
        f"{samples.decode_cpu:.1f} CPU s = {ratio:.3f} (1 thread each)"
    )
    print(f"wall time {seconds:.0f} s")


if __name__ == "__main__":
    main()
