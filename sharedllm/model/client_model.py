"""What a client keeps of a model: the tokenizer, the embedding, the final norm and the head.

Nodes only ever see hidden states; turning text into vectors and vectors back into tokens
happens here, on the client's machine.
"""

from __future__ import annotations

import torch

from sharedllm.errors import ModelError
from sharedllm.model.architecture import config_from_dict, load_weights, skeleton
from sharedllm.model.shards import decode_modules, decode_tokenizer
from sharedllm.model.store import Manifest, ModelStore


class ClientModel:
    """Embedding, final norm, head and tokenizer of one model, loaded from verified shards."""

    def __init__(
        self, store: ModelStore, manifest: Manifest, device: torch.device | None = None
    ) -> None:
        """``device``: where the embedding and the head run (the CPU by default); what they
        hand back is on the CPU whatever it is."""
        self.manifest = manifest
        self.device = device or torch.device("cpu")
        self.config = config_from_dict(manifest.config)
        parts = skeleton(self.config)
        embed_data = store.read_shard(manifest.embed_shard, what="embed shard")
        names = ("embed_tokens", "embed_positions") if parts.positions else ("embed_tokens",)
        embed = decode_modules(embed_data, names, "embed shard")
        self.embedding = load_weights(parts.embed, embed["embed_tokens"], "embed shard")
        self.positions = (
            load_weights(parts.positions, embed["embed_positions"], "embed shard (positions)")
            if parts.positions is not None
            else None
        )
        self.scaling = parts.scaling
        head_data = store.read_shard(manifest.head_shard, what="head shard")
        head = decode_modules(head_data, ("norm", "lm_head"), "head shard")
        self.norm = load_weights(parts.norm, head["norm"], "head shard (norm)")
        self.head = load_weights(parts.head, head["lm_head"], "head shard (lm_head)")
        for module in (self.embedding, self.positions, self.norm, self.head):
            if module is not None:
                module.to(self.device)
        tokenizer_data = store.read_shard(manifest.tokenizer_shard, what="tokenizer shard")
        self.tokenizer = decode_tokenizer(tokenizer_data)
        eos = set(manifest.eos_token_ids)
        if self.tokenizer.eos_token_id is not None:
            eos.add(int(self.tokenizer.eos_token_id))
        self.eos_token_ids: frozenset[int] = frozenset(eos)

    def prompt_ids(self, prompt: str, chat: bool = True) -> list[int]:
        """Token ids for a prompt, wrapped in the model's chat template when ``chat``."""
        if chat:
            return self.chat_ids([{"role": "user", "content": prompt}])
        return list(self.tokenizer.encode(prompt))

    def chat_ids(self, messages: list[dict]) -> list[int]:
        """Token ids for a conversation, ending with the assistant's turn to speak."""
        if not self.tokenizer.chat_template:
            raise ModelError(f"{self.manifest.name} has no chat template", code="NO_CHAT_TEMPLATE")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                raise ModelError(f"messages[{i}] needs a string 'content'", code="BAD_MESSAGES")
            if message.get("role") not in ("system", "user", "assistant"):
                raise ModelError(
                    f"messages[{i}].role is not system/user/assistant", code="BAD_MESSAGES"
                )
        ids = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=False
        )
        return [int(t) for t in ids]

    def embed(self, ids: list[int], start: int = 0) -> torch.Tensor:
        """Hidden states [1, T, H] float32 for token ids at positions ``start`` onwards (the
        positions matter only to a model with learned absolute position embeddings)."""
        if not ids or any(not 0 <= t < self.manifest.vocab_size for t in ids):
            raise ModelError(
                f"token ids must be non-empty and < {self.manifest.vocab_size}", code="BAD_TOKENS"
            )
        with torch.inference_mode():
            tokens = torch.tensor([ids], dtype=torch.long, device=self.device)
            hidden = self.scaling.embedding(self.embedding(tokens))
            if self.positions is not None:
                where = torch.arange(start, start + len(ids), device=self.device).unsqueeze(0)
                hidden = hidden + self.positions(where)
            return hidden.cpu()

    def next_logits(self, hidden_last: torch.Tensor) -> torch.Tensor:
        """Logits [vocab] for the token after the last position of ``hidden_last``."""
        with torch.inference_mode():
            last = hidden_last[:, -1:, :].to(self.device, torch.float32)
            return self.scaling.logits(self.head(self.norm(last))[0, -1]).cpu()

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)
