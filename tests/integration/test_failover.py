"""A hop killed mid-generation (SIGKILL) is replaced by a spare and the text does not change."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from reference import NEW_TOKENS, PROMPTS

from sharedllm.client.generate import TextGenerator
from sharedllm.node.local import local_nodes

pytestmark = pytest.mark.nodes


KILL_AFTER = 10  # tokens generated before the kill


@pytest.fixture(scope="module")
def nodes(model_home: Path):
    # Every span twice: each test kills the node its route uses for one span.
    with local_nodes(["0:10", "10:20", "20:30", "0:10", "10:20", "20:30"]) as started:
        yield started


def _generate_and_kill(nodes, client_model, prompt: str, hop: int):
    async def run():
        async with TextGenerator([n.url for n in nodes], client_model=client_model) as gen:
            tokens, victim = [], None
            ids = client_model.prompt_ids(prompt)
            async for token in gen.token_ids(ids, NEW_TOKENS):
                tokens.append(token)
                if len(tokens) == KILL_AFTER:
                    victim = next(n for n in nodes if n.url == gen.session.route[hop].url)
                    victim.kill()
            return tokens, victim, gen.session

    return asyncio.run(run())


def _check(nodes, client_model, generate_baseline, prompt, hop):
    tokens, victim, session = _generate_and_kill(nodes, client_model, prompt, hop)
    assert victim is not None and victim.process.poll() is not None
    assert len(generate_baseline[prompt]) > KILL_AFTER  # the kill really was mid-generation
    assert tokens == generate_baseline[prompt]
    assert [failed for failed, _ in session.failovers] == [victim.url]
    replacement = session.route[hop]
    assert replacement.url != victim.url
    assert (replacement.start, replacement.end) == victim.span


def test_middle_hop_killed(nodes, client_model, generate_baseline):
    _check(nodes, client_model, generate_baseline, PROMPTS[4], hop=1)


@pytest.mark.slow
def test_first_hop_killed(nodes, client_model, generate_baseline):
    _check(nodes, client_model, generate_baseline, PROMPTS[2], hop=0)


@pytest.mark.slow
def test_last_hop_killed(nodes, client_model, generate_baseline):
    _check(nodes, client_model, generate_baseline, PROMPTS[3], hop=2)
