"""One API request's answer: a paid generation on the network, cut at stop strings.

``PaidAnswer.pieces()`` yields the text as it grows, the same pieces ``TextGenerator``
gives, except that text from a stop string on is never shown: a piece that could be the
start of a stop string is held back until the next token settles it. When the iterator
ends (or is closed because the client went away) the session is closed, so the last hop
settles what was served, and the key is charged for exactly that.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field

from sharedllm.chain.amounts import format_share
from sharedllm.client.generate import TextGenerator
from sharedllm.client.payer import PaidJob
from sharedllm.errors import JobRejected, SharedLLMError
from sharedllm.gateway.budget_payer import BudgetPayer
from sharedllm.gateway.openai_shapes import GenerationRequest
from sharedllm.gateway.state import GatewayState
from sharedllm.model.sampling import SamplingParams


class StopScanner:
    """Cuts streamed text at the first stop string, holding back a possible partial match."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.pending = ""

    def feed(self, piece: str) -> tuple[str, bool]:
        """(text safe to show now, whether a stop string was reached)."""
        text = self.pending + piece
        hits = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.pending = ""
            return text[: min(hits)], True
        keep = max((_overlap(text, s) for s in self.stops), default=0)
        self.pending = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep], False

    def flush(self) -> str:
        text, self.pending = self.pending, ""
        return text


def _overlap(text: str, stop: str) -> int:
    """Length of the longest end of ``text`` that begins ``stop``."""
    for n in range(min(len(text), len(stop) - 1), 0, -1):
        if stop.startswith(text[-n:]):
            return n
    return 0


@dataclass
class PaidAnswer:
    state: GatewayState
    payer: BudgetPayer
    request: GenerationRequest
    prompt_ids: list[int]
    completion_tokens: int = 0
    finish_reason: str = "length"
    cost: int = 0
    jobs: list[PaidJob] = field(default_factory=list)

    @property
    def usage(self) -> dict[str, int]:
        prompt = len(self.prompt_ids)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": self.completion_tokens,
            "total_tokens": prompt + self.completion_tokens,
        }

    def extension(self) -> dict:
        """The ``sharedllm`` field: what the answer cost and which jobs paid for it."""
        return {
            "cost_wei": str(self.cost),
            "cost_share": format_share(self.cost),
            "jobs": [
                {
                    "job_id": paid.signed.job_id,
                    "tokens": paid.tokens,
                    "cost_wei": str(paid.cost),
                    "route": [
                        {"node": h.address, "url": h.url, "span": [h.start, h.end]}
                        for h in paid.hops
                    ],
                }
                for paid in self.jobs
                if paid.tokens
            ],
        }

    def _sampling(self) -> SamplingParams:
        r = self.request
        # top_p 0 keeps only the likeliest token, which is what greedy decoding picks.
        greedy = r.temperature == 0 or r.top_p == 0
        return SamplingParams(0.0 if greedy else r.temperature, r.top_p or 1.0, r.seed)

    async def pieces(self) -> AsyncIterator[str]:
        model = self.state.client_model
        gen = TextGenerator(
            self.state.directory,
            store=self.state.store,
            client_model=model,
            payer=self.payer,
        )
        scanner = StopScanner(self.request.stop)
        try:
            async with gen:
                tokens = gen.token_ids(self.prompt_ids, self.request.max_tokens, self._sampling())
                async with aclosing(tokens):
                    generated: list[int] = []
                    shown = ""
                    async for token in tokens:
                        self.completion_tokens += 1
                        if token in model.eos_token_ids:
                            self.finish_reason = "stop"
                            break
                        generated.append(token)
                        text = model.decode(generated)
                        if text.endswith("\ufffd"):
                            continue  # half a character: wait for the rest
                        piece = text[len(shown) :] if text.startswith(shown) else ""
                        shown = text
                        visible, stopped = scanner.feed(piece)
                        if visible:
                            yield visible
                        if stopped:
                            self.finish_reason = "stop"
                            break
                    else:
                        self.finish_reason = "length"
            tail = scanner.flush()
            if tail:
                yield tail
        except JobRejected as exc:
            if exc.code == "InsufficientEscrow":
                raise _operator_short(exc) from None
            raise
        finally:
            session = gen.session
            self.cost = self.payer.settle_all(
                session.paid if session else None, session.position if session else 0
            )
            self.jobs = list(self.payer.jobs)


def _operator_short(exc: JobRejected) -> SharedLLMError:
    """The operator's escrow ran dry: the caller cannot fix that, so it is a 503."""
    err = SharedLLMError(
        "the gateway operator's escrow cannot cover this request right now "
        f"({exc.message.split(':')[0]}); try a smaller max_tokens or tell the operator",
        code="OPERATOR_ESCROW_LOW",
        **exc.details,
    )
    err.http_status = 503
    return err
