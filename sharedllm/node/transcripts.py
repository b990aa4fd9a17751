"""Job transcripts on the node's disk: written when a paid session closes, kept until the job
is settled, and bounded by a byte budget.

A hop must be able to show a verifier what it computed until the job can no longer be
challenged, and a hop that cannot is treated as a cheat. So space is reserved when a session
opens, for the largest transcript that session could leave; a session that would not fit is
refused at the door rather than served and then forgotten. Files are written to a temporary
name and renamed, so a crash leaves either the whole transcript or none.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

from sharedllm.errors import ProtocolError, TranscriptBudget
from sharedllm.protocol import transcript_format
from sharedllm.protocol.transcript_format import Transcript
from sharedllm.protocol.types import JobId, parse_job_id

SUFFIX = ".sltx"


class TranscriptStore:
    def __init__(self, root: Path, budget_bytes: int, hidden_size: int) -> None:
        self.root = root
        self.budget_bytes = budget_bytes
        self.hidden_size = hidden_size
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob("*.tmp"):  # a write cut short by a crash
            stale.unlink(missing_ok=True)
        self._reserved: dict[str, int] = {}  # session id -> worst-case bytes
        # The event loop reserves and writes; the settler's thread deletes.
        self._lock = threading.Lock()

    def path(self, job_id: str) -> Path:
        return self.root / f"{parse_job_id(job_id)}{SUFFIX}"

    def used_bytes(self) -> int:
        total = 0
        for path in self._files():
            try:
                total += path.stat().st_size
            except FileNotFoundError:  # pruned while we counted
                continue
        return total

    def reserve(self, session_id: str, max_length: int, hop: int) -> None:
        """Hold room for the session's worst case, or refuse it with TRANSCRIPT_BUDGET."""
        need = transcript_format.worst_case_bytes(max_length, self.hidden_size, hop + 1)
        with self._lock:
            free = self.budget_bytes - self.used_bytes() - sum(self._reserved.values())
            if need > free:
                raise TranscriptBudget(
                    f"a transcript of max_length {max_length} may need {need} bytes; "
                    f"this node's transcript budget has {max(free, 0)} free",
                    field="max_length",
                    need=need,
                    free=max(free, 0),
                )
            self._reserved[session_id] = need

    def release(self, session_id: str) -> None:
        with self._lock:
            self._reserved.pop(session_id, None)

    def write(self, transcript: Transcript) -> Path:
        """Store atomically and durably: the ledger row written next relies on it."""
        final = self.path(transcript.job_id)
        tmp = final.with_name(final.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(transcript_format.encode(transcript))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        return final

    def read(self, job_id: str) -> bytes | None:
        try:
            return self.path(job_id).read_bytes()
        except FileNotFoundError:
            return None

    def discard(self, job_id: str) -> bool:
        """Delete a settled job's transcript; True if there was one."""
        path = self.path(job_id)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed

    def job_ids(self) -> Iterator[tuple[JobId, float]]:
        """The jobs with a transcript here, each with the file's modification time."""
        for path in self._files():
            try:
                yield parse_job_id(path.name.removesuffix(SUFFIX)), path.stat().st_mtime
            except (ProtocolError, OSError):  # not ours, or pruned meanwhile
                continue

    def _files(self) -> list[Path]:
        return [p for p in self.root.glob(f"*{SUFFIX}") if p.is_file()]
