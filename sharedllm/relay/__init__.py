"""``sharedllm relay``: public addresses for nodes behind NAT (``server``)."""
