"""web3.py bindings to the contracts, deployment, the local devnet and signing keys.

Start at ``connection.connect`` (a checked ``Chain`` with ``token``, ``registry`` and
``market`` wrappers), ``devnet.Devnet`` (anvil plus deployed contracts, as a context
manager) and ``accounts`` (keystores and devnet keys). Every failure is raised as an error
from ``sharedllm.errors``; contract reverts carry the Solidity error name as their code.
"""
