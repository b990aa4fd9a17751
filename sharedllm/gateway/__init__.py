"""The gateway: an OpenAI-compatible API paid from the operator's wallet, and a web page
whose jobs are signed by the visitor's own browser wallet (``sharedllm serve``)."""
