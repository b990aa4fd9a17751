"""The verifier's fetch against the node's real transcript endpoint over real HTTP; the
on-chain verifier list is stood in for by a set, the rest is the production code."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from transcript_helpers import HIDDEN, JOB_ID, STEPS, make_transcript

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.devnet import free_port
from sharedllm.errors import TranscriptUnavailable
from sharedllm.node.handlers import error_middleware
from sharedllm.node.transcript_handlers import TranscriptAccess, add_transcript_routes
from sharedllm.node.transcripts import TranscriptStore
from sharedllm.protocol import transcript_format
from sharedllm.verifier.transcript_fetch import fetch_transcript

MARKET = "0x" + "c0de" * 10
NODE = dev_account(2).address
STAKED = dev_account(6)
UNSTAKED = dev_account(7)


@contextlib.asynccontextmanager
async def _node(tmp_path, body_override: bytes | None = None):
    store = TranscriptStore(tmp_path / "transcripts", 1 << 24, HIDDEN)
    store.write(make_transcript()[0])
    if body_override is not None:
        store.path(JOB_ID).write_bytes(body_override)
    access = TranscriptAccess(store, 31337, MARKET, NODE, lambda a, _job: a == STAKED.address)
    app = web.Application(middlewares=[error_middleware])
    add_transcript_routes(app, access)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        async with aiohttp.ClientSession() as http:
            yield http, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _fetch(tmp_path, *, account=STAKED, node=NODE, job_id=JOB_ID, hop=1, body=None, **kw):
    async def run():
        async with _node(tmp_path, body) as (http, url):
            return await fetch_transcript(
                http, url, node, job_id, hop, account, 31337, MARKET, **kw
            )

    return asyncio.run(run())


def test_a_staked_verifier_gets_the_hop_transcript_as_arrays_and_receipts(tmp_path) -> None:
    stored, inputs, outputs = make_transcript()
    got = _fetch(tmp_path)
    assert got.lengths == list(STEPS)
    for mine, theirs in zip(got.inputs + got.outputs, inputs + outputs, strict=True):
        assert mine.dtype == np.float32 and np.array_equal(mine, theirs)
    assert [(r.hop, r.step) for r in got.receipts] == [(1, 0), (1, 1), (1, 2)]
    assert got.chains == stored.receipts  # hops 0 and 1, every step


@pytest.mark.parametrize(
    ("change", "code", "node_code"),
    [
        ({"account": UNSTAKED}, "TRANSCRIPT_REFUSED", "NOT_VERIFIER"),
        # Signed for another node: the node recovers some other address than the claimed one.
        ({"node": dev_account(3).address}, "TRANSCRIPT_REFUSED", "SIGNATURE_MISMATCH"),
        ({"job_id": "0x" + "cd" * 32}, "TRANSCRIPT_MISSING", "TRANSCRIPT_MISSING"),
        ({"hop": 0}, "TRANSCRIPT_MISSING", "TRANSCRIPT_MISSING"),
    ],
)
def test_refusals_carry_the_nodes_code(tmp_path, change, code, node_code) -> None:
    with pytest.raises(TranscriptUnavailable) as err:
        _fetch(tmp_path, **change)
    assert err.value.code == code
    assert err.value.details["node_code"] == node_code


def test_a_body_that_does_not_parse_is_malformed(tmp_path) -> None:
    good = transcript_format.encode(make_transcript()[0])
    with pytest.raises(TranscriptUnavailable) as err:
        _fetch(tmp_path, body=good[:-10])
    assert err.value.code == "TRANSCRIPT_MALFORMED"


def test_an_unreachable_node_is_refused_not_hung(tmp_path) -> None:
    async def run():
        async with aiohttp.ClientSession() as http:
            return await fetch_transcript(
                http, f"http://127.0.0.1:{free_port()}", NODE, JOB_ID, 1, STAKED, 31337, MARKET,
                timeout_s=2,
            )  # fmt: skip

    with pytest.raises(TranscriptUnavailable) as err:
        asyncio.run(run())
    assert err.value.code == "TRANSCRIPT_REFUSED"
