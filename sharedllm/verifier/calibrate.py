"""Measure the tolerance statistic for honest and cheating hops, to set and check the rule.

A calibration run answers prompts greedily with the whole model split into spans (as a
route of nodes would) and records every hop's per-step inputs. Then, per hop:

- honest: the node's step-by-step decode with one thread count, the verifier's prefill with
  the other; and the verifier's prefill of two jobs stacked into one batch;
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
from sharedllm.verifier.cheats import CheatingRunner, CheatMode
from sharedllm.verifier.recompute import HopTranscript, check_hop
from sharedllm.verifier.tolerance import TolerancePolicy


@dataclass
class Job:
    """One answered prompt: its tokens and, per hop, the inputs of every step."""

    prompt: str
    tokens: list[int]
    hop_inputs: list[list[np.ndarray]]  # [hop][step] -> [T, H]


@dataclass
class Samples:
    """Worst per-position score and pass/fail of every check, by class."""

    scores: dict[str, list[float]] = field(default_factory=dict)
    passed: dict[str, list[bool]] = field(default_factory=dict)
    decode_cpu: float = 0.0
    prefill_cpu: float = 0.0

    def add(self, kind: str, score: float, ok: bool) -> None:
        self.scores.setdefault(kind, []).append(score)
        self.passed.setdefault(kind, []).append(ok)


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
    """Greedy answer through the spans, keeping what each hop received at each step."""
    caches = [r.new_cache() for r in runners]
    hop_inputs: list[list[np.ndarray]] = [[] for _ in runners]
    step_ids, position, tokens = client.prompt_ids(prompt), 0, []
    while len(tokens) < max_new_tokens:
        hidden = client.embed(step_ids)
        for hop, (runner, cache) in enumerate(zip(runners, caches, strict=True)):
            hop_inputs[hop].append(hidden[0].numpy().copy())
            hidden = runner.forward(hidden, cache, position)
        position += len(step_ids)
        token = int(torch.argmax(client.next_logits(hidden)))
        tokens.append(token)
        if token in client.eos_token_ids:
            break
        step_ids = [token]
    return Job(prompt, tokens, hop_inputs)


def decode(runner: SpanRunner | CheatingRunner, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """What a node sends back: each step through the span, with one cache for the job."""
    cache, position, outputs = runner.new_cache(), 0, []
    for rows in inputs:
        out = runner.forward(torch.from_numpy(rows).unsqueeze(0), cache, position)
        outputs.append(out[0].numpy().copy())
        position += rows.shape[0]
    return outputs


def batched_prefill(runner: SpanRunner, jobs: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """The span over several jobs' inputs at once, cut to the shortest, as one batch.

    ``SpanRunner.forward`` takes one sequence; this calls its layers the same way with a
    batch dimension, to see whether batch shapes change the rounding.
    """
    from transformers.masking_utils import create_causal_mask

    joined = [np.concatenate(j, axis=0) for j in jobs]
    length = min(x.shape[0] for x in joined)
    hidden = torch.from_numpy(np.stack([x[:length] for x in joined]))
    cache = runner.new_cache()
    with torch.inference_mode():
        positions = torch.arange(length).unsqueeze(0).expand(hidden.shape[0], -1)
        rotary = runner.rotary(hidden, positions)
        mask = create_causal_mask(
            config=runner.config,
            inputs_embeds=hidden,
            attention_mask=None,
            past_key_values=cache,
            position_ids=positions,
        )
        for layer in runner.layers:
            hidden = layer(
                hidden,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
                position_embeddings=rotary,
            )
    return hidden.numpy()


def check_class(
    samples: Samples,
    kind: str,
    verifier: SpanRunner,
    inputs: list[np.ndarray],
    outputs: list[np.ndarray],
    policy: TolerancePolicy,
    verifier_threads: int,
) -> None:
    with threads(verifier_threads):
        result = check_hop(verifier, HopTranscript.from_arrays(inputs, outputs), policy)
    samples.add(kind, max(result.step_scores), result.verdict.ok)


def calibrate(
    client: ClientModel,
    runners: Sequence[SpanRunner],
    prompts: Sequence[str],
    max_new_tokens: int,
    policy: TolerancePolicy,
    cheat_jobs: int,
    cheat_rate_steps: float = 0.05,
    log=print,
) -> Samples:
    """Run every class over the prompts; cheats run on the first ``cheat_jobs`` jobs."""
    samples = Samples()
    jobs = []
    with threads(1):
        for prompt in prompts:
            jobs.append(answer(client, runners, prompt, max_new_tokens))
    log(f"answered {len(jobs)} prompts, {sum(len(j.tokens) for j in jobs)} tokens")
    for hop, runner in enumerate(runners):
        span = f"{runner.start}:{runner.end}"
        began = time.monotonic()
        for index, job in enumerate(jobs):
            inputs = job.hop_inputs[hop]
            for node_threads in (1, 2):
                with threads(node_threads):
                    t0 = time.process_time()
                    outputs = decode(runner, inputs)
                    node_cpu = time.process_time() - t0
                check_class(samples, "honest", runner, inputs, outputs, policy, 3 - node_threads)
                if node_threads == 1:
                    t0 = time.process_time()
                    with threads(1):
                        check_hop(runner, HopTranscript.from_arrays(inputs, outputs), policy)
                    samples.prefill_cpu += time.process_time() - t0
                    samples.decode_cpu += node_cpu
            if index % 2 == 1:
                _check_batched(samples, runner, jobs[index - 1].hop_inputs[hop], inputs, policy)
            if index < cheat_jobs:
                _check_cheats(samples, runner, jobs, index, hop, policy, cheat_rate_steps)
        log(f"span {span}: {time.monotonic() - began:.0f} s")
    return samples


def _check_batched(samples, runner, first, second, policy) -> None:
    """Honest decode of two jobs, verified as one batch of two."""
    with threads(1):
        node_outputs = [decode(runner, first), decode(runner, second)]
    with threads(2):
        stacked = batched_prefill(runner, [first, second])
    for inputs, node_out, ours in zip((first, second), node_outputs, stacked, strict=True):
        committed = np.concatenate(node_out, axis=0)[: ours.shape[0]]
        scores = policy.position_scores(committed, ours)
        samples.add("honest-batched", float(scores.max()), bool(policy.passes(scores).all()))


def _check_cheats(samples, runner, jobs, index, hop, policy, rate_steps) -> None:
    inputs = jobs[index].hop_inputs[hop]
    for mode in CheatMode:
        cheat = CheatingRunner(runner, mode, 1.0, seed=index)
        if mode is CheatMode.REPLAY:
            decode(cheat, jobs[index - 1].hop_inputs[hop])  # the earlier job it replays
        with threads(1):
            outputs = decode(cheat, inputs)
        check_class(samples, mode.value, runner, inputs, outputs, policy, 2)
    # One step in twenty skips a layer; only transcripts with a cheated step count.
    cheat = CheatingRunner(runner, CheatMode.SKIP_LAYER, rate_steps, seed=1000 + index)
    with threads(1):
        outputs = decode(cheat, inputs)
    if cheat.cheated_steps:
        check_class(samples, "skip_layer:0.05", runner, inputs, outputs, policy, 2)


def summary(values: Sequence[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)
