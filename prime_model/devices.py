"""Which torch device a caller asked for, refused up front when this machine does not have it.

``torch.device("cuda:3")`` is accepted on any machine; the failure only comes at the first
``.to()``, as a bare ``AssertionError`` ("Torch not compiled with CUDA enabled") or a
``RuntimeError`` deep inside a forward pass. Every entry point that takes a device resolves it
here first, so the error is typed and says what to pass instead.
"""

from __future__ import annotations

import torch

from prime_model.errors import PredictorError, PrimeError

SUPPORTED = "'cpu', 'cuda', 'cuda:<index>', 'mps' or 'auto'"


def cuda_device_count() -> int:
    """CUDA devices usable here (0 without a driver or a CUDA build of torch)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_device(
    device: str | torch.device, error: type[PrimeError] = PredictorError
) -> torch.device:
    """``device`` as a :class:`torch.device` that exists on this machine, else ``error``."""
    if isinstance(device, str) and device.strip() == "auto":
        return torch.device("cuda" if cuda_device_count() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise error(f"invalid device {device!r}: {exc}; expected {SUPPORTED}") from None
    if resolved.type == "cpu":
        return resolved
    if resolved.type == "cuda":
        count = cuda_device_count()
        if count == 0:
            raise error(
                f"device {str(resolved)!r} was asked for, but no CUDA device is available on "
                "this machine (torch.cuda.is_available() is False); pass device='cpu', or "
                "'auto' to use a GPU only where there is one"
            )
        if resolved.index is not None and resolved.index >= count:
            raise error(
                f"device {str(resolved)!r} was asked for, but this machine has {count} CUDA "
                f"device(s) (cuda:0 to cuda:{count - 1}); pass one of those, 'cuda' or 'cpu'"
            )
        return resolved
    if resolved.type == "mps":
        if not torch.backends.mps.is_available():
            raise error(
                f"device {str(resolved)!r} was asked for, but Apple MPS is not available on "
                "this machine; pass device='cpu' or 'auto'"
            )
        return resolved
    raise error(f"unsupported device {str(resolved)!r}; expected {SUPPORTED}")
