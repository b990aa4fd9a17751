"""Measure the tolerance statistic for honest and cheating hops, to set and check the rule.

A calibration run answers prompts greedily with the whole model split into spans (as a
route of nodes would) and records every hop's per-step inputs. Then, per hop:

- honest: the node's step-by-step decode with one thread count, the verifier's prefill with
  the other; the verifier's prefill of two jobs stacked into one batch; and the decode of a
  node that ran four jobs' one-token steps as batches (``SpanRunner.forward_batch``, as the
  node's worker does with concurrent sessions);
- cheating: the same decode through a ``CheatingRunner`` in each mode.

Every (class, job, hop) gives one check: its worst per-position score and the verdict of the
policy under test. bench/detection.py prints the summary; docs/VERIFICATION.md keeps it.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from sharedllm.model.client_model import ClientModel
from sharedllm.model.span import SpanRunner
from sharedllm.testing.cheats import CheatingRunner, CheatMode, cheat_schedule, modes_for
from sharedllm.verifier.recompute import HopTranscript, recompute
from sharedllm.verifier.tolerance import TolerancePolicy, relative_error


@dataclass
class Job:
    """One answered prompt: its tokens and, per hop, what every step received and sent
    (the node's side, decoded with one thread) and the CPU seconds the hop spent on it."""

    prompt: str
    tokens: list[int]
    hop_inputs: list[list[np.ndarray]]  # [hop][step] -> [T, H]
    hop_outputs: list[list[np.ndarray]]
    hop_cpu: list[float]


@dataclass
class Samples:
    """Per class, one entry per check: the worst position's score, pass or fail, and for
    the record the worst full and robust parts and the best position's score (for a
    cheat on every step, the position that came closest to passing)."""

    scores: dict[str, list[float]] = field(default_factory=dict)
    passed: dict[str, list[bool]] = field(default_factory=dict)
    parts: dict[str, list[tuple[float, ...]]] = field(default_factory=dict)

    def add(self, kind: str, score: float, ok: bool, parts: tuple[float, ...]) -> None:
        self.scores.setdefault(kind, []).append(score)
        self.passed.setdefault(kind, []).append(ok)
        self.parts.setdefault(kind, []).append(parts)


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def answer(
    client: ClientModel, runners: Sequence[SpanRunner], prompt: str, max_new_tokens: int
) -> Job:
    """Greedy answer through the spans, keeping what each hop received and sent."""
    caches = [r.new_cache() for r in runners]
    job = Job(prompt, [], [[] for _ in runners], [[] for _ in runners], [0.0] * len(runners))
    step_ids, position = client.prompt_ids(prompt), 0
    while len(job.tokens) < max_new_tokens:
        hidden = client.embed(step_ids, position)
        for hop, (runner, cache) in enumerate(zip(runners, caches, strict=True)):
            job.hop_inputs[hop].append(hidden[0].numpy().copy())
            began = time.process_time()
            hidden = runner.forward(hidden, cache, position)
            job.hop_cpu[hop] += time.process_time() - began
            job.hop_outputs[hop].append(hidden[0].numpy().copy())
        position += len(step_ids)
        token = int(torch.argmax(client.next_logits(hidden)))
        job.tokens.append(token)
        if token in client.eos_token_ids:
            break
        step_ids = [token]
    return job


def decode(runner: SpanRunner | CheatingRunner, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """What a node sends back: each step through the span, with one cache for the job."""
    cache, position, outputs = runner.new_cache(), 0, []
    for rows in inputs:
        out = runner.forward(torch.from_numpy(rows).unsqueeze(0), cache, position)
        outputs.append(out[0].numpy().copy())
        position += rows.shape[0]
    return outputs


def batched_decode(
    runner: SpanRunner, jobs: Sequence[Sequence[np.ndarray]]
) -> list[list[np.ndarray]]:
    """What a node serving these jobs at the same time sends back: each prompt alone, then
    every one-token step of the jobs still decoding as one batch, each with its own cache."""
    caches = [runner.new_cache() for _ in jobs]
    outputs: list[list[np.ndarray]] = [[] for _ in jobs]
    for job, cache, out in zip(jobs, caches, outputs, strict=True):
        out.append(runner.forward(torch.from_numpy(job[0]).unsqueeze(0), cache, 0)[0].numpy())
    for step in range(1, max(len(job) for job in jobs)):
        live = [i for i, job in enumerate(jobs) if step < len(job)]
        rows = [torch.from_numpy(jobs[i][step]).unsqueeze(0) for i in live]
        if len(live) == 1:  # a lone step runs alone on a node too
            i = live[0]
            done = [runner.forward(rows[0], caches[i], caches[i].get_seq_length(runner.start))]
        else:
            done = runner.forward_batch(rows, [caches[i] for i in live])
        for i, out in zip(live, done, strict=True):
            outputs[i].append(out[0].numpy().copy())
    return outputs


def batched_prefill(runner: SpanRunner, jobs: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """The span over several jobs' inputs at once, cut to the shortest, as one batch of
    prefills (``SpanRunner.forward_batch`` on fresh caches), to see whether batch shapes
    change the rounding."""
    joined = [np.concatenate(j, axis=0) for j in jobs]
    length = min(x.shape[0] for x in joined)
    rows = [torch.from_numpy(x[:length]).unsqueeze(0) for x in joined]
    outputs = runner.forward_batch(rows, [runner.new_cache() for _ in rows])
    return torch.cat(outputs, dim=0).numpy()


def score(
    samples: Samples,
    kind: str,
    committed: list[np.ndarray],
    ours: list[np.ndarray],
    policy: TolerancePolicy,
) -> None:
    """Record one check of ``committed`` against the verifier's ``ours`` (both per step)."""
    theirs, mine = np.concatenate(committed), np.concatenate(ours)
    combined = policy.position_scores(theirs, mine)
    full = relative_error(theirs, mine)
    robust = policy.robust_error(theirs, mine)
    ok = bool(policy.passes(combined).all())
    parts = (float(full.max()), float(robust.max()), float(combined.min()))
    samples.add(kind, float(combined.max()), ok, parts)


def verify(runner: SpanRunner, inputs: list[np.ndarray], n_threads: int) -> list[np.ndarray]:
    with threads(n_threads):
        return recompute(runner, HopTranscript.from_arrays(inputs, inputs))


def calibrate(
    client: ClientModel,
    runners: Sequence[SpanRunner],
    prompts: Sequence[str],
    max_new_tokens: int,
    policy: TolerancePolicy,
    cheat_jobs: int,
    swap_every: int = 2,
    log=print,
    verifier_runners: Sequence[SpanRunner] | None = None,
) -> Samples:
    """Honest checks on every job (threads swapped on one job in ``swap_every``), batched
    checks on pairs, and every cheating mode on the first ``cheat_jobs`` jobs of each hop.
    ``verifier_runners``: the verifier's spans on another device than the nodes' ``runners``
    (the same spans by default)."""
    samples = Samples()
    checkers = verifier_runners or runners
    with threads(1):
        jobs = [answer(client, runners, prompt, max_new_tokens) for prompt in prompts]
    log(f"answered {len(jobs)} prompts, {sum(len(j.tokens) for j in jobs)} tokens")
    for hop, runner in enumerate(runners):
        began = time.monotonic()
        checker = checkers[hop]
        verified: dict[int, list[np.ndarray]] = {}
        for index, job in enumerate(jobs):
            inputs, outputs = job.hop_inputs[hop], job.hop_outputs[hop]
            verified[index] = verify(checker, inputs, 2)
            score(samples, "honest 1->2 thr", outputs, verified[index], policy)
            if index % 4 == 3:
                group = range(index - 3, index + 1)
                with threads(1):
                    served = batched_decode(runner, [jobs[i].hop_inputs[hop] for i in group])
                for i, node_out in zip(group, served, strict=True):
                    score(samples, "honest node batch", node_out, verified[i], policy)
            if index % swap_every == swap_every - 1:
                with threads(2):
                    outputs_2 = decode(runner, inputs)
                score(samples, "honest 2->1 thr", outputs_2, verify(checker, inputs, 1), policy)
            if index % 2 == 1 and checker is runner:  # a batch on one device, to itself
                previous = jobs[index - 1]
                pair = [previous.hop_inputs[hop], inputs]
                with threads(2):
                    stacked = batched_prefill(runner, pair)
                for node_out, ours in zip(
                    (previous.hop_outputs[hop], outputs), stacked, strict=True
                ):
                    committed = np.concatenate(node_out)[: ours.shape[0]]
                    score(samples, "honest batched", [committed], [ours], policy)
            if index < cheat_jobs:
                _cheats(samples, runner, checker, jobs, index, hop, policy)
        log(f"span {runner.start}:{runner.end}: {time.monotonic() - began:.0f} s")
    return samples


def measure_cost(
    client: ClientModel, runners: Sequence[SpanRunner], prompts: Sequence[str], tokens: int
) -> list[tuple[int, float, float]]:
    """(positions, node decode CPU s, verifier prefill CPU s) per job and hop, one thread."""
    out = []
    with threads(1):
        for prompt in prompts:
            job = answer(client, runners, prompt, tokens)
            for hop, runner in enumerate(runners):
                began = time.process_time()
                recompute(
                    runner, HopTranscript.from_arrays(job.hop_inputs[hop], job.hop_inputs[hop])
                )
                ours = time.process_time() - began
                positions = sum(x.shape[0] for x in job.hop_inputs[hop])
                out.append((positions, job.hop_cpu[hop], ours))
    return out


def _cheats(
    samples: Samples,
    runner: SpanRunner,
    checker: SpanRunner,
    jobs: list[Job],
    index: int,
    hop: int,
    policy,
) -> None:
    inputs = jobs[index].hop_inputs[hop]
    ours = verify(checker, inputs, 2)
    other = np.concatenate(jobs[index - 1].hop_outputs[hop])
    for mode in modes_for(runner.manifest.dtype):
        cheat = CheatingRunner(runner, mode, 1.0, seed=index, replay_from=torch.from_numpy(other))
        with threads(1):
            score(samples, mode.value, decode(cheat, inputs), ours, policy)
    # An honest node that skips a layer on one step in twenty. Detection is measured on jobs
    # that contain a cheated step, so the seed is the first one whose schedule has one.
    seed = next(
        s for s in range(1000 * index, 1000 * index + 1000) if cheat_schedule(0.05, s, len(inputs))
    )
    cheat = CheatingRunner(runner, CheatMode.SKIP_LAYER, 0.05, seed)
    with threads(1):
        score(samples, "skip_layer 1/20", decode(cheat, inputs), ours, policy)


def summary(values: Sequence[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)
