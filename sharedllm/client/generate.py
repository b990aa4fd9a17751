"""Text generation over the network: the client embeds, the route runs the layers, the client
applies the head and samples.

    async with TextGenerator(["http://127.0.0.1:8001", ...]) as gen:
        async for piece in gen.generate("What is the capital of France?"):
            print(piece, end="")
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import torch

from sharedllm.client.directory import NodeDirectory, StaticDirectory
from sharedllm.client.payer import Payer
from sharedllm.client.planner import RoutePlanner, RoutePolicy
from sharedllm.client.session import InferenceSession
from sharedllm.errors import ContextTooLong
from sharedllm.model.client_model import ClientModel
from sharedllm.model.manifest import Manifest
from sharedllm.model.sampling import Sampler, SamplingParams
from sharedllm.model.store import ModelStore
from sharedllm.peers.http import PeerClient
from sharedllm.peers.link_tls import LinkTrust


class TextGenerator:
    def __init__(
        self,
        nodes: Sequence[str] | NodeDirectory,
        *,
        store: ModelStore | None = None,
        model_id: str | None = None,
        policy: RoutePolicy | None = None,
        link_delay_ms: float = 0.0,
        step_timeout_s: float = 30.0,
        client_model: ClientModel | None = None,
        payer: Payer | None = None,
        device: torch.device | None = None,
    ) -> None:
        store = store or ModelStore()
        self.manifest = client_model.manifest if client_model else store.manifest(model_id)
        self.model = client_model or ClientModel(store, self.manifest, device)
        self.directory = nodes if isinstance(nodes, NodeDirectory) else StaticDirectory(nodes)
        # Without a registry, an https node whose key the command line did not name is
        # trusted on first use, and said so.
        trust = LinkTrust(trust_on_first_use=not self.directory.knows_keys, report=_say)
        self.peers = PeerClient(link_delay_s=link_delay_ms / 1000.0, trust=trust)
        self.planner = RoutePlanner(
            self.directory, self.peers, policy, encrypted_only=payer is not None
        )
        self.step_timeout_s = step_timeout_s
        self.payer = payer  # signs a job per route; None on a free network
        self.session: InferenceSession | None = None  # the latest, for its route and failovers

    async def __aenter__(self) -> TextGenerator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.peers.close()

    async def token_ids(
        self,
        ids: list[int],
        max_new_tokens: int,
        sampling: SamplingParams | None = None,
        session_options: dict[str, Any] | None = None,
        stop_at_eos: bool = True,
    ) -> AsyncIterator[int]:
        """New token ids, one per step, ending after an end-of-sequence token (included)
        unless ``stop_at_eos`` is False (benchmarks want a fixed length)."""
        sampler = Sampler(sampling or SamplingParams())
        m = self.manifest
        check_context(m, len(ids), max_new_tokens)
        self.session = InferenceSession(
            self.planner,
            m.model_id,
            m.num_layers,
            m.hidden_size,
            max_length=len(ids) + max_new_tokens,
            step_timeout_s=self.step_timeout_s,
            payer=self.payer,
            **(session_options or {}),
        )
        async with self.session as session:
            hidden = self.model.embed(ids)
            for produced in range(max_new_tokens):
                out = await session.step(hidden.numpy())
                token = sampler.sample(self.model.next_logits(torch.from_numpy(out)))
                yield token
                if stop_at_eos and token in self.model.eos_token_ids:
                    return
                hidden = self.model.embed([token], len(ids) + produced)

    async def generate(
        self,
        prompt: str,
        *,
        max_tokens: int = 128,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        chat_template: bool = True,
    ) -> AsyncIterator[str]:
        ids = self.model.prompt_ids(prompt, chat=chat_template)
        async for piece in self._text(ids, max_tokens, SamplingParams(temperature, top_p, seed)):
            yield piece

    async def chat(
        self, messages: list[dict], *, max_tokens: int = 256, sampling: SamplingParams | None = None
    ) -> AsyncIterator[str]:
        async for piece in self._text(self.model.chat_ids(messages), max_tokens, sampling):
            yield piece

    async def _text(
        self, ids: list[int], max_tokens: int, sampling: SamplingParams | None
    ) -> AsyncIterator[str]:
        """Decoded text as it grows; a piece is held back while it ends in half a character."""
        generated: list[int] = []
        shown = ""
        async for token in self.token_ids(ids, max_tokens, sampling):
            generated.append(token)
            text = self.model.decode(generated)
            if text.endswith("\ufffd"):
                continue
            if text.startswith(shown):
                yield text[len(shown) :]
            shown = text


async def generate(prompt: str, nodes: Sequence[str], **options: Any) -> AsyncIterator[str]:
    """One-shot helper: stream the answer to ``prompt`` from the given nodes."""
    gen_options = {
        k: options.pop(k) for k in ("store", "model_id", "link_delay_ms") if k in options
    }
    async with TextGenerator(nodes, **gen_options) as gen:
        async for piece in gen.generate(prompt, **options):
            yield piece


def check_context(manifest: Manifest, prompt_tokens: int, max_new_tokens: int) -> None:
    """Refuse, before any job is signed, a request whose positions would not fit the model."""
    context = manifest.context_length
    if context is not None and prompt_tokens + max_new_tokens > context:
        raise ContextTooLong(
            f"this model's context is {context} tokens; the prompt has {prompt_tokens} and "
            f"{max_new_tokens} more were asked for: shorten the prompt or ask for fewer tokens",
            prompt_tokens=prompt_tokens,
            max_tokens=max_new_tokens,
            context_length=context,
        )


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
