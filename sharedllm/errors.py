"""The project's one exception tree.

Every error carries a stable, machine-readable ``code`` that the HTTP layer puts in
its JSON body and the command line prints, so scripts and peers can branch on it
without parsing prose. Codes that mirror a contract's custom error use the
Solidity error name verbatim (see ``sharedllm.protocol.codes``), so a node refusing
a job and the chain reverting it say the same thing.
"""

from __future__ import annotations

from typing import Any


class SharedLLMError(Exception):
    """Base of every error the project raises on purpose."""

    code: str = "ERROR"
    http_status: int = 400

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = {k: _plain(v) for k, v in self.details.items()}
        return body

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


class ConfigError(SharedLLMError):
    """Bad command-line option, configuration value or local file."""

    code = "BAD_CONFIG"


class KeystoreError(SharedLLMError):
    """A key could not be loaded: missing file, locked keystore, wrong password."""

    code = "KEYSTORE"


class ChainError(SharedLLMError):
    """Talking to the chain failed: unreachable RPC, wrong chain, unknown deployment."""

    code = "CHAIN"
    http_status = 502


class ContractRevert(ChainError):
    """A contract call reverted; ``code`` is the Solidity custom error's name."""

    code = "CONTRACT_REVERT"
    http_status = 400


class ModelError(SharedLLMError):
    """A model, manifest or shard is missing, corrupt or does not fit."""

    code = "MODEL"
    http_status = 404


class ProtocolError(SharedLLMError):
    """Bytes from a peer do not parse: malformed frame, job, receipt or body."""

    code = "BAD_REQUEST"
    http_status = 400


class JobRejected(ProtocolError):
    """A job fails the checks the JobMarket applies; ``code`` matches the contract's error."""

    code = "JOB_REJECTED"
    http_status = 402


class SessionError(SharedLLMError):
    """An inference session is unknown, closed, out of order or over a limit."""

    code = "SESSION"
    http_status = 409


class ContextTooLong(SessionError):
    """A prompt plus the tokens asked for do not fit the model's context; refused before
    anything is reserved, signed or sent."""

    code = "CONTEXT_LENGTH_EXCEEDED"
    http_status = 400


class PeerError(SharedLLMError):
    """A peer (node or RPC) failed, stalled or answered with an error."""

    code = "PEER_FAILED"
    http_status = 502


class LinkUntrusted(PeerError):
    """A node's address presented a key other than the one expected there, or no key is
    known for it: nothing is sent over such a link."""

    code = "LINK_UNTRUSTED"


class RouteError(SharedLLMError):
    """No chain of known nodes covers the model's layers."""

    code = "NO_ROUTE"
    http_status = 503


class VerifierError(SharedLLMError):
    """A verifier could not check a job: a transcript it needs is missing, refused or corrupt."""

    code = "VERIFIER"
    http_status = 502


class AccessError(SharedLLMError):
    """A request without a valid credential (a missing, unknown or revoked API key)."""

    code = "INVALID_API_KEY"
    http_status = 401


class BudgetError(SharedLLMError):
    """A request whose worst-case cost does not fit what its API key has left to spend."""

    code = "BUDGET_EXCEEDED"
    http_status = 429


class NodeHostError(SharedLLMError):
    """The node host could not start a node: unreachable, running other code, or a bad request."""

    code = "NODE_HOST"


# -- The data path on the wire: frames, bodies, sessions (codes a node answers with)


class FrameError(ProtocolError):
    """A tensor frame does not parse or does not fit (codes: BAD_FRAME, BAD_DTYPE, BAD_SHAPE,
    BAD_LENGTH, NON_FINITE)."""

    code = "BAD_FRAME"


class BodyTooLarge(ProtocolError):
    code = "BODY_TOO_LARGE"
    http_status = 413


class BodySlow(ProtocolError):
    code = "BODY_TIMEOUT"
    http_status = 408


class WrongModel(ProtocolError):
    code = "WRONG_MODEL"


class SpanNotServed(ProtocolError):
    code = "SPAN_NOT_SERVED"


class SessionForbidden(SessionError):
    """A request that only the session's client may make came without its hop's key."""

    code = "SESSION_FORBIDDEN"
    http_status = 403


class SessionUnknown(SessionError):
    """No open session with that id: never opened, closed, or reaped when idle."""

    code = "SESSION_UNKNOWN"
    http_status = 404


class SessionReclaimed(SessionUnknown):
    """A full free node closed this idle session to give a client below its fair share
    room (``node/fair_share.py``); open again, on this node or another."""

    code = "SESSION_RECLAIMED"
    http_status = 410


class StepOutOfOrder(SessionError):
    code = "STEP_OUT_OF_ORDER"


class SessionLimit(SessionError):
    """The node is at its cap of sessions or cache memory; try another node."""

    code = "SESSION_LIMIT"
    http_status = 429


class NodeMoving(SessionLimit):
    """The node is moving to other layers and opens no session until it has; plan again."""

    code = "NODE_MOVING"


class AdmissionRefused(SessionError):
    code = "ADMISSION_REFUSED"
    http_status = 403


# -- Transcript requests: who may read a hop's transcript


class TranscriptAuthError(ProtocolError):
    """A transcript request is not signed by whom it claims, or no longer valid
    (codes: SIGNATURE_MISMATCH, REQUEST_EXPIRED, EXPIRY_TOO_FAR)."""

    code = "SIGNATURE_MISMATCH"
    http_status = 401


class NotVerifier(ProtocolError):
    """The signer is not an active verifier on the market, so it may not read transcripts."""

    code = "NOT_VERIFIER"
    http_status = 403


# -- A node's transcript store


class TranscriptBudget(SessionLimit):
    """Keeping this session's transcript could overrun the node's transcript disk budget."""

    code = "TRANSCRIPT_BUDGET"


# -- A node's transcript endpoint


class TranscriptMissing(SharedLLMError):
    """This node holds no transcript for that job (never served here, or already pruned)."""

    code = "TRANSCRIPT_MISSING"
    http_status = 404


# -- A node's batch endpoint


class BatchUnknown(SharedLLMError):
    """This node posted no batch of that number."""

    code = "BATCH_UNKNOWN"
    http_status = 404


# -- The receipt handoff after a last hop died


class HandoffRefused(SharedLLMError):
    """This node will not take over the job's submission (unknown, not needed, or done)."""

    code = "HANDOFF_REFUSED"
    http_status = 409


class JobUnknown(HandoffRefused):
    """This node holds no served job of that id."""

    code = "JOB_UNKNOWN"
    http_status = 404


# -- The verifier's transcript fetch


class TranscriptUnavailable(VerifierError):
    """A hop's transcript could not be had (codes: TRANSCRIPT_REFUSED for a refusal, an HTTP
    error or a timeout; TRANSCRIPT_MISSING when the node has none; TRANSCRIPT_MALFORMED
    when the body does not parse or is not the transcript asked for)."""

    code = "TRANSCRIPT_REFUSED"


# -- The verifier's service


class WindowClosing(SharedLLMError):
    """The challenge window would close before the check and its transaction finish."""

    code = "WINDOW_CLOSING"


# -- The web page's wallet signatures


class SignatureRefused(JobRejected):
    """The wallet declined to sign: nothing was signed, so nothing can be charged."""

    code = "SIGNATURE_REFUSED"


class SignatureTimeout(JobRejected):
    """No signature arrived in time; the unsigned job can never be charged."""

    code = "SIGNATURE_TIMEOUT"
    http_status = 408


class WrongSigner(ProtocolError):
    """The signature is valid but not by the job's client (another account in the wallet)."""

    code = "WRONG_SIGNER"


# -- The web page's job routes


class UnknownJob(SharedLLMError):
    code = "UNKNOWN_JOB"
    http_status = 404


class NotWaiting(SharedLLMError):
    """The job is not waiting for a signature: already answered, timed out, or never asked."""

    code = "NOT_WAITING"
    http_status = 409
