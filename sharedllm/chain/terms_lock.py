"""A node's model, span and price change at most once per the registry's terms lock.

The market checks and prices a job against the terms its hops had when it may have been
sent: the current ones, or for a job that may be older than a hop's last change, the ones
before it (``NodeRegistry.priorTerms``). A second change within one lock would leave jobs
sent under the middle terms matching neither, so the registry refuses it
(``TermsChangeTooSoon``); this module says so first, in words, before a transaction is sent.
"""

from __future__ import annotations

from sharedllm.chain.connection import Chain
from sharedllm.chain.registry import NodeConfig, NodeInfo, Terms
from sharedllm.chain.times import format_duration
from sharedllm.errors import ConfigError, JobRejected
from sharedllm.protocol import codes
from sharedllm.protocol.job import Job


def hop_price(
    job: Job, hop: int, node: NodeInfo, prior: Terms, changed_at: int, max_job_ttl: int
) -> int:
    """What route hop ``hop`` is paid per layer-token, as ``JobMarket`` prices it: by the
    node's registered terms if the job fits them, else by the terms before its last change
    if the job may have been sent before it (its deadline is at most the change plus the
    longest job) and fits those. A job that fits neither is refused with the contract's
    error for the current terms."""
    now = Terms(node.model_id, node.start, node.end, node.price_per_token)
    if _fits(job, hop, now):
        return now.price_per_token
    if changed_at and job.deadline <= changed_at + max_job_ttl and _fits(job, hop, prior):
        return prior.price_per_token
    who = f"hop {hop} ({node.address})"
    if now.model_id.lower() != job.model_id.lower():
        raise JobRejected(f"{who} serves another model", code=codes.MODEL_MISMATCH)
    if not now.start <= job.span_starts[hop] < job.span_ends[hop] <= now.end:
        raise JobRejected(
            f"{who} serves layers {now.start}:{now.end}, not "
            f"{job.span_starts[hop]}:{job.span_ends[hop]}",
            code=codes.SPAN_MISMATCH,
        )
    raise JobRejected(
        f"{who} charges {now.price_per_token}, above the job's cap {job.max_price_per_token}",
        code=codes.PRICE_ABOVE_CAP,
    )


def _fits(job: Job, hop: int, terms: Terms) -> bool:
    return (
        terms.model_id.lower() == job.model_id.lower()
        and terms.start <= job.span_starts[hop]
        and job.span_ends[hop] <= terms.end
        and terms.price_per_token <= job.max_price_per_token
    )


def changes_terms(node: NodeInfo, cfg: NodeConfig) -> bool:
    """Whether ``cfg`` changes what a job is checked against (not just endpoint or keys)."""
    return (node.model_id.lower(), node.start, node.end, node.price_per_token) != (
        cfg.model_id.lower(), cfg.start, cfg.end, cfg.price_per_token,
    )  # fmt: skip


def check_terms_change(chain: Chain, node: NodeInfo, cfg: NodeConfig) -> None:
    """Refuse, as the registry would, a change of terms that comes too soon after the last."""
    if node.status == "None" or not changes_terms(node, cfg):
        return
    lock = chain.registry.terms_lock()
    changed_at, now = chain.registry.terms_changed_at(node.address), chain.now()
    if changed_at and now < changed_at + lock:
        raise ConfigError(
            f"this node changed its model, span or price {format_duration(now - changed_at)} "
            f"ago; the next change can come in {format_duration(changed_at + lock - now)} "
            f"(once per {format_duration(lock)}, so that every job is checked against terms "
            "it was sent under)",
            code="TermsChangeTooSoon",
            field="config",
        )
