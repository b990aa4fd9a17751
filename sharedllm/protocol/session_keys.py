"""Per-hop session keys: only the client that opened a session may steer or read it.

Every hop of a route learns the session id, so the id cannot be what lets a caller close a
session, re-point a hop, replay into it or read its inputs and outputs (a hop 0's inputs are
the prompt's embeddings; the last hop's outputs give away the answer). The client draws a
secret per session and derives one key per hop from it; each hop is told only the SHA-256
of its own key when the session opens, and the client presents the key in ``X-Session-Key``
on those requests. A hop never sees another hop's key, so it cannot use its knowledge of the
session against its neighbours. Pushing the next step stays open to the previous hop, which
must do it; a paid session's receipts chain makes a forged push useless.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Session-Key"
_DOMAIN = b"sharedllm/session-key/v1"


def hop_key(secret: bytes, session_id: str, hop_index: int, url: str) -> str:
    """The key (hex) for hop ``hop_index`` at ``url`` of session ``session_id``."""
    message = b"|".join((_DOMAIN, session_id.encode(), str(hop_index).encode(), url.encode()))
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def key_digest(key: str) -> str:
    """What the hop keeps and the open request carries: the key's SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(presented: str | None, digest: str | None) -> bool:
    if presented is None or digest is None or len(presented) > 128:
        return False
    return hmac.compare_digest(key_digest(presented), digest)
