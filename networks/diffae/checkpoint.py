"""Loading and saving DiffAE weights safely.

- Our own weights: safetensors with the preset and prediction target in the metadata.
- The official release: a Lightning `last.ckpt` whose `state_dict` holds `model.*` and `ema_model.*`; we take the
  EMA weights, read with `torch.load(weights_only=True)` (no unpickling of arbitrary objects).
"""

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from networks.diffae.config import preset
from networks.diffae.model import DiffAE


class CheckpointError(ValueError):
    pass


def save_backbone(model: DiffAE, path: str | Path, preset_name: str, prediction: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"preset": preset_name, "prediction": prediction})


def load_backbone(path: str | Path, preset_name: str | None = None) -> tuple[DiffAE, str]:
    """(model, prediction target) from our safetensors file or an official Lightning checkpoint. Our files name
    their preset, which wins over `preset_name`; an official checkpoint does not, so it is built as `preset_name`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such backbone weights file. Train one with `make pretrain-backbone`, "
                              f"or set backbone.weights to the file you have.")
    if path.suffix == ".safetensors":
        state, meta = _read_safetensors(path)
        preset_name = meta.get("preset") or preset_name
        prediction = meta.get("prediction", "eps")
    else:
        state, prediction = read_official_checkpoint(path), "eps"
    if preset_name is None:
        raise CheckpointError(f"{path}: the file does not say which preset it holds; set backbone.preset")
    model = DiffAE(preset(preset_name))
    _load_strict(model, state, path, preset_name)
    return model.eval(), prediction


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        return load_file(str(path)), meta
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({error}); it may be truncated. "
                              f"Re-create it with `make pretrain-backbone`.") from None


def read_official_checkpoint(path: str | Path, prefix: str = "ema_model.") -> dict[str, torch.Tensor]:
    """The EMA weights of an official DiffAE Lightning checkpoint (or a bare state_dict)."""
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # garbage bytes raise anything from the unpickler: IndexError, KeyError, ...
        first_line = str(error).partition("\n")[0][:200]
        raise CheckpointError(f"{path}: cannot read as a PyTorch checkpoint ({type(error).__name__}: "
                              f"{first_line}); it may be truncated or not a checkpoint.") from None
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict with a 'state_dict', got {type(ckpt).__name__}")
    if any(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def _load_strict(model: DiffAE, state: dict[str, torch.Tensor], path: Path, preset_name: str) -> None:
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{path}: {len(not_tensors)} entries are not tensors, e.g. {not_tensors[:3]}; "
                              f"this is not a DiffAE weights file")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{path} does not match preset {preset_name!r}: {len(missing)} missing keys {missing[:3]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:3]}, {len(wrong)} wrong shapes {wrong[:3]}")
    model.load_state_dict(state, strict=True)
