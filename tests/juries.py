"""A jury that votes as a test tells it: verifier accounts staked, drawn, voting, on a devnet."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

from eth_account.signers.local import LocalAccount

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.connection import Chain
from sharedllm.chain.court import vote_commitment


def stake_verifiers(chain: Chain, indexes: Sequence[int]) -> list[LocalAccount]:
    accounts = [dev_account(i) for i in indexes]
    stake = chain.court.params()["minVerifierStake"]
    for account in accounts:
        chain.court.stake_verifier(account, stake, chain.token)
    return accounts


def draw(chain: Chain, job_id: str, by: LocalAccount) -> list[str]:
    """Draw the jury once the draw block is mined (the devnet mines every second)."""
    deadline = time.monotonic() + 30
    while chain.w3.eth.block_number <= chain.court.get_dispute(job_id).draw_block:
        assert time.monotonic() < deadline, "no block after the draw block"
        time.sleep(0.2)
    chain.court.draw_jury(by, job_id)
    return list(chain.court.get_dispute(job_id).jurors)


def vote(chain: Chain, job_id: str, jurors: Sequence[LocalAccount], uphold: bool) -> None:
    """Every seated juror among ``jurors`` commits ``uphold``, then reveals it."""
    dispute = chain.court.get_dispute(job_id)
    seated = [j for j in jurors if j.address in dispute.jurors]
    salts = {j.address: secrets.token_bytes(32) for j in seated}
    for j in seated:
        commitment = vote_commitment(job_id, dispute.round, j.address, uphold, salts[j.address])
        chain.court.commit_vote(j, job_id, commitment)
    for j in seated:
        chain.court.reveal_vote(j, job_id, uphold, salts[j.address])
