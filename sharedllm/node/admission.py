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

    async def closed(self, request: OpenSession, tokens_served: int) -> None:
        """Called once when the session ends, so a paid admission can settle the job."""


class AcceptAll(Admission):
    """Serves every well-formed request: a free network, or a local test."""
