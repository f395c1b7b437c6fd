"""A trained mapper as safetensors: its weights plus, in the metadata, its sizes and how it was trained."""

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from networks.mapper import LatentMapper

SIZE_KEYS = ("latent_dim", "width", "depth")


class MapperLoadError(ValueError):
    """A mapper file is missing, unreadable or does not fit; the message names the file and the fix."""


def save_mapper(mapper: LatentMapper, path: str | Path, info: dict) -> None:
    """`info` holds the sizes (latent_dim, width, depth) and anything worth keeping (attribute, sms, backbone);
    whether the offset is whitened is read from the mapper itself."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().contiguous().cpu() for name, tensor in mapper.state_dict().items()}
    info = {**info, "whiten": mapper.whitening is not None}
    save_file(tensors, path, metadata={"mapper": json.dumps(info)})


def load_mapper(path: str | Path) -> tuple[LatentMapper, dict]:
    path = Path(path)
    if not path.is_file():
        raise MapperLoadError(f"{path}: no such mapper file")
    try:
        with safe_open(path, framework="pt") as file:
            info = json.loads((file.metadata() or {})["mapper"])
            tensors = {name: file.get_tensor(name) for name in file.keys()}
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as error:
        raise MapperLoadError(f"{path}: not a chatface mapper file ({type(error).__name__}: {error}); it may be "
                              f"truncated. Train it again with `make train ATTR=<name>`.") from error
    if missing := [key for key in SIZE_KEYS if key not in info]:
        raise MapperLoadError(f"{path}: the mapper metadata lacks {', '.join(missing)}; train it again with "
                              f"`make train ATTR=<name>`")
    # files written before whitening existed lack the key, and have no whitening tensor
    mapper = LatentMapper(**{key: int(info[key]) for key in SIZE_KEYS}, whiten=bool(info.get("whiten", False)))
    try:
        mapper.load_state_dict(tensors)
    except RuntimeError as error:
        raise MapperLoadError(f"{path}: tensors do not fit a mapper of sizes {info}: {error}") from error
    return mapper.eval().requires_grad_(False), info
