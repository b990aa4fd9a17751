"""Who may open a session: a policy the handlers consult before any work is reserved.

The default accepts every well-formed request. A paid network plugs in an admission that
checks the signed, prepaid job carried in the open request; the handlers do not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sharedllm.errors import JobRejected
from sharedllm.protocol.amendment import Amendment
from sharedllm.protocol.receipts import Receipt
from sharedllm.protocol.session_msgs import OpenSession

if TYPE_CHECKING:  # sessions imports the span worker (torch); admission must stay light
    from sharedllm.node.sessions import StepRecord


class Admission:
    """Decides whether an open request is served; raise a ``SharedLLMError`` to refuse."""

    # Free sessions cost their holder nothing, so a node caps them per client address; a
    # paid admission reserves each job's worst case from the client's escrow instead.
    limits_per_client = True

    async def admit(self, request: OpenSession) -> None:
        """Accept by returning; refuse by raising (e.g. ``AdmissionRefused`` or ``JobRejected``)."""

    async def amend(
        self, session_id: str, amendments: tuple[Amendment, ...], position: int
    ) -> None:
        """A paid job's client replaced another hop (``protocol.amendment``); ``position``
        is how far this hop's session has run. A free network has no jobs to amend."""
        raise JobRejected(
            "this node serves free sessions: there is no job to amend", code="JobRequired"
        )

    def replayed_receipts(
        self, session_id: str, chains: list[list[Receipt]], steps: Sequence[StepRecord]
    ) -> int:
        """A replacement's receipt chains for the steps it replayed; returns how many it took.
        A free network keeps no receipts."""
        raise JobRejected(
            "this node serves free sessions: it keeps no receipts", code="JobRequired"
        )

    def receipts(
        self,
        session_id: str,
        step: int,
        upstream: list[str],
        data: bytes,
        output: bytes,
        start_pos: int,
        positions: int,
    ) -> list[str]:
        """The receipts to pass on with a computed step: the upstream ones plus this hop's.
        A free network keeps none."""
        return []

    async def closed(self, request: OpenSession, steps: Sequence[StepRecord] = ()) -> None:
        """Called once when the session ends, so a paid admission can settle the job.
        ``steps`` are the steps the job may charge for (``Session.served_steps``): their
        positions are the tokens served, and a paid admission keeps them as the transcript."""


class AcceptAll(Admission):
    """Serves every well-formed request: a free network, or a local test."""
