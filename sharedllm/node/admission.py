"""Who may open a session: a policy the handlers consult before any work is reserved.

The default accepts every well-formed request. A paid network plugs in an admission that
checks the signed, prepaid job carried in the open request; the handlers do not change.
"""

from __future__ import annotations

from sharedllm.protocol.session_msgs import OpenSession


class Admission:
    """Decides whether an open request is served; raise a ``SharedLLMError`` to refuse."""

    async def admit(self, request: OpenSession) -> None:
        """Accept by returning; refuse by raising (e.g. ``AdmissionRefused`` or ``JobRejected``)."""

    def receipts(
        self,
        session_id: str,
        step: int,
        upstream: list[str],
        data: bytes,
        output: bytes,
        shape: tuple[int, ...],
    ) -> list[str]:
        """The receipts to pass on with a computed step: the upstream ones plus this hop's.
        A free network keeps none."""
        return []

    async def closed(self, request: OpenSession, tokens_served: int) -> None:
        """Called once when the session ends, so a paid admission can settle the job.
        ``tokens_served`` counts the positions the session computed."""


class AcceptAll(Admission):
    """Serves every well-formed request: a free network, or a local test."""
