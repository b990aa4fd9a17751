"""Which device a span, a verifier or a client's embedding and head run on.

``--device auto`` takes the best this torch build can reach (a CUDA GPU, then Apple's MPS,
then the CPU); naming a device this build or machine lacks fails at start with one line.
Weights and KV caches live on the device; hidden states cross every boundary (frames,
transcripts, the client) as float32 on the CPU, so peers on different devices interoperate.

The hardware class (``cpu``, ``cuda-sm86``, ``mps``) is what a node reports in ``/info``
and what the tolerance rule keys on (``verifier/tolerance.py``): two machines of one class
round alike, two classes may not. On CUDA, TF32 matrix products are turned off, so that a
float32 model is computed in float32.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sharedllm.errors import ConfigError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda", "mps")


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _mps() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str) -> torch.device:
    """The device ``--device NAME`` means here; a clear error when it is absent. (This
    module imports torch only when asked, so that command lines can offer ``DEVICES``.)"""
    import torch

    if name not in DEVICES:
        raise ConfigError(f"--device {name!r} is not one of {', '.join(DEVICES)}", field="device")
    if name == "auto":
        name = "cuda" if _cuda() else "mps" if _mps() else "cpu"
    if name == "cuda" and not _cuda():
        build = "this torch has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise ConfigError(
            f"--device cuda: {build} (torch {torch.__version__}); use --device cpu or auto",
            field="device",
        )
    if name == "mps" and not _mps():
        raise ConfigError(
            f"--device mps: Apple's MPS is not available here (torch {torch.__version__}); "
            "use --device cpu or auto",
            field="device",
        )
    if name == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return torch.device(name)


def hardware_class(device: torch.device) -> str:
    """``cpu``, ``mps``, or ``cuda-sm<major><minor>`` (the GPU's compute capability)."""
    import torch

    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"cuda-sm{major}{minor}"
    return device.type
