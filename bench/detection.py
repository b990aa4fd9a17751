"""Does the verifier tell honest hops from cheating ones, and what does checking cost?

In one process: greedy answers through spans 0:10, 10:20, 20:30; per hop, the node's
step-by-step decode (1 or 2 threads) against the verifier's prefill (the other count), two
jobs verified as one batch, and every cheating mode. Prints the score distribution per class,
the threshold and margin, detection and false-positive rates, and the verifier's CPU time per
checked job against the node's (the baseline, measured in the same run).

    SHAREDLLM_HOME=.state .venv/bin/python bench/detection.py [--prompts 40] [--tokens 8]
        [--cheat-jobs 3] [--swap-every 4] [--cost-jobs 1] [--cost-tokens 128]
        [--spans 0:10,10:20,20:30] [--precision float32|int8]
        [--node-device cpu|cuda|mps|auto] [--verifier-device cpu|cuda|mps|auto]

The cost is timed on long answers (the client's default is 128 tokens) because a job's
prompt is one prefill for the node too: on short answers the ratio mostly measures that.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sharedllm.model.client_model import ClientModel
from sharedllm.model.device import DEVICES, hardware_class, resolve_device
from sharedllm.model.importer import import_model
from sharedllm.model.manifest import FLOAT32, PRECISIONS
from sharedllm.model.span import SpanRunner
from sharedllm.model.store import ModelStore
from sharedllm.testing.calibrate import Samples, calibrate, measure_cost, summary
from sharedllm.verifier.hardware_rules import calibrate as hardware_calibrate
from sharedllm.verifier.hardware_rules import rule_for
from sharedllm.verifier.tolerance import TolerancePolicy

SUBJECTS = (
    "the sea", "a robot", "Paris", "prime numbers", "photosynthesis", "the moon", "coffee",
    "a lighthouse", "bicycles", "volcanoes", "the piano", "winter", "bees", "a library",
    "rain", "chess", "the internet", "a forest", "trains", "friendship",
)  # fmt: skip
TEMPLATES = ("Write one sentence about {}.", "What is interesting about {}?")
PROMPTS = tuple(t.format(s) for t in TEMPLATES for s in SUBJECTS)


STORY_PROMPTS = (
    "Tell me a short story about a robot who learns to paint.",
    "Explain how a bicycle works, step by step.",
    "Describe a walk through a forest in autumn.",
)


def main() -> None:
    args = _parse()
    torch.manual_seed(0)
    store = ModelStore()
    manifest = store.manifest()
    if args.precision != manifest.dtype:
        manifest = import_model(store, precision=args.precision).manifest
    print(f"model {manifest.name} in {manifest.dtype}: {manifest.model_id}")
    client = ClientModel(store, manifest)
    spans = [tuple(int(x) for x in s.split(":")) for s in args.spans.split(",")]
    node_device = resolve_device(args.node_device)
    verifier_device = resolve_device(args.verifier_device)
    runners = [SpanRunner(store, manifest, a, b, node_device) for a, b in spans]
    checkers = (
        runners
        if verifier_device == node_device
        else [SpanRunner(store, manifest, a, b, verifier_device) for a, b in spans]
    )
    policy = TolerancePolicy()
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.prompts)]
    began = time.monotonic()
    samples = calibrate(
        client, runners, prompts, args.tokens, policy, args.cheat_jobs, args.swap_every,
        verifier_runners=checkers,
    )  # fmt: skip
    _report(samples, policy)
    _report_rule(samples, hardware_class(node_device), hardware_class(verifier_device), manifest)
    costs = measure_cost(client, runners, STORY_PROMPTS[: args.cost_jobs], args.cost_tokens)
    _report_cost(costs)
    print(f"wall time {time.monotonic() - began:.0f} s")


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=40, help="answered prompts (jobs)")
    p.add_argument("--tokens", type=int, default=8, help="max new tokens per answer")
    p.add_argument("--cheat-jobs", type=int, default=3, help="jobs per hop run in each cheat")
    p.add_argument(
        "--swap-every", type=int, default=4, help="decode with 2 threads on 1 job in this many"
    )
    p.add_argument("--cost-jobs", type=int, default=1, help="long answers timed for the cost")
    p.add_argument("--cost-tokens", type=int, default=128, help="their max new tokens")
    p.add_argument("--spans", default="0:10,10:20,20:30")
    p.add_argument("--node-device", choices=DEVICES, default="cpu", help="the nodes' spans")
    p.add_argument("--verifier-device", choices=DEVICES, default="cpu", help="the verifier's spans")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=FLOAT32,
        help="the default model in this precision (imported if missing); the cheats are those "
        "cheaper than it",
    )
    return p.parse_args()


def _report(samples: Samples, policy: TolerancePolicy) -> None:
    honest = [k for k in samples.scores if k.startswith("honest")]
    cheats = [k for k in samples.scores if k not in honest]
    print(
        f"\n{'class':<17}{'checks':>7}{'min':>10}{'median':>10}{'max':>10}"
        f"{'full':>10}{'robust':>10}{'best pos':>10}{'flagged':>9}"
    )
    print(f"{'':<24}(of the worst position per check)   (medians over checks)   (min)")
    for kind in honest + cheats:
        lo, mid, hi = summary(samples.scores[kind])
        parts = [statistics.median(p[i] for p in samples.parts[kind]) for i in range(2)]
        parts.append(min(p[2] for p in samples.parts[kind]))
        flagged = sum(not ok for ok in samples.passed[kind])
        n = len(samples.scores[kind])
        cells = "".join(f"{x:>10.2e}" for x in (lo, mid, hi, *parts))
        print(f"{kind:<17}{n:>7}{cells}{flagged:>6}/{n}")
    worst_honest = max(max(samples.scores[k]) for k in honest)
    mildest_cheat = min(min(samples.scores[k]) for k in cheats)
    honest_checks = sum(len(samples.passed[k]) for k in honest)
    false_pos = sum(not ok for k in honest for ok in samples.passed[k])
    print(f"\nthreshold {policy.threshold:.1e}")
    print(
        f"margin: threshold / worst honest = {policy.threshold / worst_honest:.0f}x; "
        f"mildest cheat / threshold = {mildest_cheat / policy.threshold:.1f}x"
    )
    print(f"false positives: {false_pos}/{honest_checks} honest checks")
    for kind in cheats:
        caught = sum(not ok for ok in samples.passed[kind])
        n = len(samples.passed[kind])
        print(f"detected {kind:<17}{caught:>3}/{n} = {100 * caught / n:.0f}% (check probability 1)")


def _report_rule(samples: Samples, node: str, verifier: str, manifest) -> None:
    """The rule these distributions give the pair, next to the one the verifier applies."""
    honest = [x for k, v in samples.scores.items() if k.startswith("honest") for x in v]
    cheats = {k: v for k, v in samples.scores.items() if not k.startswith("honest")}
    measured = hardware_calibrate(node, verifier, manifest.dtype, honest, cheats)
    applied = rule_for(node, verifier, manifest.dtype)
    shown = "none" if measured.threshold is None else f"{measured.threshold:.1e}"
    used = "none" if applied.threshold is None else f"{applied.threshold:.1e}"
    print(f"\nnode {node}, verifier {verifier}, {manifest.dtype}: calibrated threshold {shown} "
          f"({measured.basis}); in use {used} ({applied.basis})")  # fmt: skip


def _report_cost(costs: list[tuple[int, float, float]]) -> None:
    print(f"\n{'positions':>10}{'node decode CPU s':>19}{'verifier CPU s':>16}{'ratio':>8}")
    for positions, node, ours in costs:
        print(f"{positions:>10}{node:>19.2f}{ours:>16.2f}{ours / node:>8.3f}")
    node = sum(c[1] for c in costs)
    ours = sum(c[2] for c in costs)
    print(f"{'all':>10}{node:>19.2f}{ours:>16.2f}{ours / node:>8.3f}  (1 thread each)")


if __name__ == "__main__":
    main()
