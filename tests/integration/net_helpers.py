"""Shared by the integration tests: the prompts, and generation through running nodes."""

from __future__ import annotations

import asyncio

from reference import NEW_TOKENS

from sharedllm.client.generate import TextGenerator
from sharedllm.model.client_model import ClientModel
from sharedllm.model.sampling import SamplingParams


def network_tokens(
    client_model: ClientModel,
    urls: list[str],
    prompt: str,
    max_new_tokens: int = NEW_TOKENS,
    sampling: SamplingParams | None = None,
) -> list[int]:
    """Token ids generated through the nodes at ``urls``."""

    async def run() -> list[int]:
        async with TextGenerator(urls, client_model=client_model) as gen:
            ids = client_model.prompt_ids(prompt)
            return [t async for t in gen.token_ids(ids, max_new_tokens, sampling)]

    return asyncio.run(run())
