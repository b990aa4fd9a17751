"""Models: import, shards, spans and the client's part (see docs/MODEL.md).

transformers imports torchao (the int8 precision's library) as soon as it loads any model,
and torchao logs on import that its CUDA-only extensions do not load, and torch that torchao
registers its enums the old way. Neither concerns a CPU node's operator: both loggers keep
only errors, for every process that uses this package.
"""

import logging

for _name in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_name).setLevel(logging.ERROR)
