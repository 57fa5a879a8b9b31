"""The ground floor: which device a command runs on, and the float32 policy of inference.

Device: ``auto`` is CUDA when available, else the CPU; an explicit ``cuda`` without a GPU is
an error that says so. Later: the process's rank and world size under torchrun.

Float32: on CUDA, PyTorch runs convolutions in TF32 by default
(``torch.backends.cudnn.allow_tf32``), which rounds operands to 10 mantissa bits.
Measured on an H100 (benchmarks/check_cuda.py): logits move by 2.5e-3 and IG maps by
3.8e-2 relative L2 against the CPU; with TF32 off, 1e-6 and 1.7e-3. evaluate, predict,
explain and ablate therefore run inside :func:`full_float32`, so the logits they compute
agree with each other and with the CPU.
Training keeps its mixed precision.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch

F = TypeVar("F", bound=Callable)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu``, ``cuda``, ``cuda:1``, ... as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA device is available")
    return torch.device(name)


@contextmanager
def full_float32_context() -> Iterator[None]:
    """TF32 off for cuDNN convolutions and CUDA matrix products; restored on exit."""
    conv, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, matmul


def full_float32(fn: F) -> F:
    """Decorator: run ``fn`` inside :func:`full_float32_context`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with full_float32_context():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
