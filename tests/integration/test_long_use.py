"""What ordinary use reaches: paid prompts near the model's context and a 20-turn paid chat.

Real anvil, three real paid node processes, the real model. Every step's frame carries the
route's receipts for that step; they must not grow with the prompt or the conversation.
"""

from __future__ import annotations

import asyncio

import pytest

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.client.generate import TextGenerator
from sharedllm.client.session import InferenceSession
from sharedllm.errors import ContextTooLong
from sharedllm.localnet import LocalNetwork
from sharedllm.protocol.frames import TensorFrame

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

SETTLE_S = 120
PROMPT = "What is the capital of France?"


@pytest.fixture(scope="module")
def net(paid_network: LocalNetwork) -> LocalNetwork:
    paid_network.chain.market.deposit(dev_account(6), 50 * WEI_PER_SHARE, paid_network.chain.token)
    return paid_network


def _prompt_of(net: LocalNetwork, tokens: int) -> tuple[str, int]:
    """A chat prompt of at most ``tokens`` ids with its template (and a little under), and
    its exact length."""
    model = TextGenerator(net.payer(dev_account(6)).directory, store=net.store).model
    sentence = "The quick brown fox jumps over the lazy dog. "
    text = sentence * (tokens // 10)
    while (n := len(model.prompt_ids(text, chat=True))) > tokens:
        text = text[: -len(sentence)]
    return text, n


def test_a_paid_prompt_near_the_context_is_answered_and_billed_for_its_positions(net):
    context = net.manifest.context_length
    assert context == 8192
    prompt, positions = _prompt_of(net, context - 64)
    assert positions > context - 100
    before = net.chain.market.escrow_of(dev_account(6).address)
    text, jobs = net.generate(prompt, dev_account(6), max_tokens=4)
    assert text.strip()
    assert len(jobs) == 1, "a long prompt must not need a failover"
    paid = jobs[0]
    assert positions <= paid.tokens < positions + 4  # the prompt and the tokens fed back
    record = net.wait_for_job(paid.signed.job_id, "Submitted", "Finalized", timeout=SETTLE_S)
    assert record.tokens_served == paid.tokens
    escrow = net.chain.market.escrow_of(dev_account(6).address)
    assert escrow == before - paid.cost  # locked for exactly what the receipts prove


def test_a_prompt_past_the_context_is_refused_before_anything_is_signed(net):
    payer = net.payer(dev_account(6))
    prompt, _ = _prompt_of(net, 8150)

    async def ask() -> None:
        async with TextGenerator(payer.directory, payer=payer, store=net.store) as gen:
            async for _ in gen.generate(prompt, max_tokens=100):
                pass

    with pytest.raises(ContextTooLong) as err:
        asyncio.run(ask())
    assert err.value.code == "CONTEXT_LENGTH_EXCEEDED"
    assert err.value.details["context_length"] == 8192
    assert payer.jobs == []  # nothing signed, nothing reserved


@pytest.mark.slow  # about 45 s; the default run stays under its 20 minutes
def test_a_twenty_turn_paid_chat_keeps_its_history_and_pays_each_turn(net):
    payer = net.payer(dev_account(6))
    messages: list[dict] = []
    replies: list[str] = []

    async def converse() -> None:
        async with TextGenerator(payer.directory, payer=payer, store=net.store) as gen:
            for turn in range(20):
                messages.append({"role": "user", "content": f"Turn {turn}: name a color."})
                pieces = [p async for p in gen.chat(messages, max_tokens=12)]
                reply = "".join(pieces)
                replies.append(reply)
                messages.append({"role": "assistant", "content": reply})

    asyncio.run(converse())
    assert len(replies) == 20 and all(r.strip() for r in replies)
    assert len(payer.jobs) == 20  # one job per turn, no failover
    tokens = [p.tokens for p in payer.jobs]
    assert tokens == sorted(tokens) and tokens[-1] > 20 * 12  # the history is the prompt
    last = payer.jobs[-1]
    record = net.wait_for_job(last.signed.job_id, "Submitted", "Finalized", timeout=SETTLE_S)
    assert record.tokens_served == last.tokens


def test_a_step_the_client_never_received_is_not_billed(net):
    """The client pays for what it received, no more: the last hop counts a step once its
    output went out to the client, so a step computed after the client left is not charged."""
    payer = net.payer(dev_account(6))
    m = net.manifest

    async def run() -> tuple[object, int]:
        async with TextGenerator(payer.directory, payer=payer, store=net.store) as gen:
            ids = gen.model.prompt_ids(PROMPT)
            session = InferenceSession(
                gen.planner, m.model_id, m.num_layers, m.hidden_size,
                max_length=len(ids) + 8, payer=payer,
            )  # fmt: skip
            async with session:
                await session.step(gen.model.embed(ids).numpy())
                received = session.position
                # One more step goes in, and the client leaves before its answer comes out.
                frame = TensorFrame.from_numpy(
                    gen.model.embed([5]).numpy(), {"step": 1, "start_pos": received}
                )
                url = f"{session.route[0].url}/sessions/{session.session_id}/steps"
                await gen.peers.post_frame(url, frame, 60)
            return payer.jobs[-1], received

    paid, received = asyncio.run(run())
    record = net.wait_for_job(paid.signed.job_id, "Submitted", "Finalized", timeout=SETTLE_S)
    assert record.tokens_served == received == paid.tokens
