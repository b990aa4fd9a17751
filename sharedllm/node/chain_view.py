"""The chain state a node's job checks read, from a real chain (synchronous web3)."""

from __future__ import annotations

from web3 import Web3

from sharedllm.chain.connection import Chain
from sharedllm.chain.transact import rpc
from sharedllm.node.job_checks import HopRecord
from sharedllm.protocol.job import Job, recover_job_signer
from sharedllm.protocol.types import JobId

# ERC-1271's magic value: isValidSignature(bytes32,bytes) returns its own selector.
_ERC1271_MAGIC = bytes.fromhex("1626ba7e")
_ERC1271_ABI = [
    {
        "name": "isValidSignature",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "hash", "type": "bytes32"}, {"name": "signature", "type": "bytes"}],
        "outputs": [{"name": "magic", "type": "bytes4"}],
    }
]


class ChainJobView:
    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.chain_id = chain.chain_id
        self.market = chain.market.address
        self.max_job_ttl = int(chain.market.params()["maxJobTtl"])

    def signature_valid(self, job: Job, job_hash: JobId, signature: bytes) -> bool:
        """ECDSA by the client, or ERC-1271 if the client is a contract (as SignatureChecker)."""
        if len(signature) == 65:
            try:
                if recover_job_signer(job, signature, self.chain_id, self.market) == job.client:
                    return True
            except Exception:  # a malformed signature is simply not the client's
                pass
        w3: Web3 = self.chain.w3
        if not rpc(lambda: w3.eth.get_code(job.client), "getCode"):
            return False
        wallet = w3.eth.contract(address=job.client, abi=_ERC1271_ABI)
        try:
            magic = wallet.functions.isValidSignature(bytes.fromhex(job_hash[2:]), signature).call()
        except Exception:  # a reverting wallet rejects the signature, as SignatureChecker does
            return False
        return bytes(magic) == _ERC1271_MAGIC

    def job_known(self, job_hash: JobId) -> bool:
        return self.chain.market.get_job(job_hash).status != "None"

    def hop(self, node: str) -> HopRecord:
        info = self.chain.registry.get_node(node)
        return HopRecord(
            info.active,
            info.model_id,
            info.start,
            info.end,
            info.price_per_token,
            bytes.fromhex(info.pubkey.removeprefix("0x")),
        )

    def available_escrow(self, client: str, until: int) -> int:
        """Escrow that will still be there at ``until``: less a withdrawal ready before then."""
        escrow = self.chain.market.escrow_of(client)
        pending = self.chain.market.pending_withdrawal(client)
        if pending.amount and pending.ready_at <= until:
            return max(0, escrow - pending.amount)
        return escrow
