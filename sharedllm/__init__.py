"""SharedLLM: a community-run network for sharded, paid, verified LLM inference."""

__version__ = "0.1.0"
