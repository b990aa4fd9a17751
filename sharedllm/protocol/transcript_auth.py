"""Who may read a hop's transcript: a staked verifier, proven by a signed, short-lived request.

A transcript holds a job's hidden states, so a node hands it only to accounts the JobMarket
lists as verifiers. The request carries three headers; the signature is an EIP-191
``personal_sign`` over a fixed text that names the purpose, the chain, the market, the node
being asked, the job and an expiry. Naming the node means a signature captured by one node
cannot be replayed to another; naming the chain and market keeps a devnet signature off a
real network; the expiry, at most ``MAX_AHEAD_S`` ahead, bounds how long a leaked one works.

The same message builder serves the verifier that signs and the node that checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sharedllm.errors import ProtocolError, TranscriptAuthError
from sharedllm.protocol.types import Address, JobId, parse_address, parse_job_id

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

# eth-account is imported where a request is signed or checked: a node without an account
# (a free network) never needs it, and importing it costs about a second at start-up.

VERIFIER_HEADER = "X-SharedLLM-Verifier"
EXPIRES_HEADER = "X-SharedLLM-Expires"
SIGNATURE_HEADER = "X-SharedLLM-Signature"
MAX_AHEAD_S = 600  # a node refuses a request that claims to stay valid longer than this
DEFAULT_LIFETIME_S = 120

_SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")


@dataclass(frozen=True)
class TranscriptAuth:
    verifier: Address
    expires: int
    signature: bytes


def request_message(chain_id: int, market: str, node: str, job_id: str, expires: int) -> str:
    """The exact text a verifier signs to read ``node``'s transcript of ``job_id``.

    Addresses are written checksummed and the job id in lowercase, so both sides build the
    same bytes from any spelling of the same values.
    """
    return (
        "SharedLLM transcript request\n"
        f"chain: {int(chain_id)}\n"
        f"market: {parse_address(market, 'market')}\n"
        f"node: {parse_address(node, 'node')}\n"
        f"job: {parse_job_id(job_id, 'job_id')}\n"
        f"expires: {int(expires)}"
    )


def sign_request(
    account: LocalAccount,
    chain_id: int,
    market: str,
    node: str,
    job_id: str,
    expires: int,
) -> dict[str, str]:
    """The headers that prove ``account`` asks ``node`` for ``job_id``'s transcript."""
    text = request_message(chain_id, market, node, job_id, expires)
    from eth_account.messages import encode_defunct

    signed = account.sign_message(encode_defunct(text=text))
    return {
        VERIFIER_HEADER: account.address,
        EXPIRES_HEADER: str(int(expires)),
        SIGNATURE_HEADER: "0x" + bytes(signed.signature).hex(),
    }


def parse_headers(headers: Mapping[str, str]) -> TranscriptAuth:
    """Strictly parse the three headers; a missing or malformed one is named in the error."""
    missing = [h for h in (VERIFIER_HEADER, EXPIRES_HEADER, SIGNATURE_HEADER) if h not in headers]
    if missing:
        raise ProtocolError(
            f"missing header(s): {', '.join(missing)}", code="AUTH_MISSING", field=missing[0]
        )
    verifier = parse_address(headers[VERIFIER_HEADER], VERIFIER_HEADER)
    raw_expires = headers[EXPIRES_HEADER]
    if not raw_expires.isascii() or not raw_expires.isdigit() or len(raw_expires) > 12:
        raise ProtocolError(
            f"{EXPIRES_HEADER}: expected unix seconds", code="BAD_HEADER", field=EXPIRES_HEADER
        )
    raw_signature = headers[SIGNATURE_HEADER]
    if not _SIGNATURE.match(raw_signature):
        raise ProtocolError(
            f"{SIGNATURE_HEADER}: expected 0x + 65 bytes of hex",
            code="BAD_HEADER",
            field=SIGNATURE_HEADER,
        )
    return TranscriptAuth(verifier, int(raw_expires), bytes.fromhex(raw_signature[2:]))


def check_request(
    auth: TranscriptAuth,
    *,
    chain_id: int,
    market: str,
    node: str,
    job_id: JobId,
    now: float,
) -> None:
    """Raise unless the request is fresh and signed by ``auth.verifier`` for this node and job.

    Whether the signer is a staked verifier is a chain question; the caller asks it after
    this, so a forged request costs the node no RPC call.
    """
    if auth.expires < now:
        raise TranscriptAuthError("the request has expired", code="REQUEST_EXPIRED")
    if auth.expires > now + MAX_AHEAD_S:
        raise TranscriptAuthError(
            f"{EXPIRES_HEADER} is more than {MAX_AHEAD_S} s ahead", code="EXPIRY_TOO_FAR"
        )
    from eth_account import Account
    from eth_account.messages import encode_defunct

    text = request_message(chain_id, market, node, job_id, auth.expires)
    try:
        signer = Account.recover_message(encode_defunct(text=text), signature=auth.signature)
    except Exception:  # any unrecoverable signature is simply not the claimed account's
        signer = None
    if signer != auth.verifier:
        raise TranscriptAuthError(
            f"the signature is not {auth.verifier}'s for this node, job and expiry",
            code="SIGNATURE_MISMATCH",
        )
