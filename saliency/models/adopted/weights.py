"""State-dict files: torch's format (loaded with ``weights_only``) or ``.safetensors``,
unwrapped (``{"state_dict": ...}`` and the like) and without DataParallel or
``torch.compile`` prefixes."""

from __future__ import annotations

from pathlib import Path

import torch

WRAPPERS = ("state_dict", "model_state_dict", "model", "net", "weights")
PREFIXES = ("module.", "_orig_mod.")

PICKLE_HINT = (
    "holds pickled Python objects, and loading it runs code from the file; if you trust it, "
    "pass --trust-pickle, or save a state dict (model.state_dict()) and name --arch or "
    "--function"
)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a state-dict file (torch's format or ``.safetensors``), unwrapped and
    without DataParallel prefixes."""
    if not path.is_file():
        raise FileNotFoundError(f"--weights {path} does not exist")
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
            raise ValueError(f"{path} is not a readable safetensors file ({why})") from exc
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"{path} {PICKLE_HINT}") from exc
    for key in WRAPPERS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"{path} holds no state dict (a dict of tensors)")
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    for prefix in PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state
