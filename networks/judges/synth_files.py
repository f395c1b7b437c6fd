"""Synth judge weights as safetensors: the tensors plus, in the metadata, which judge it is and its sizes.

A file alone rebuilds its network, and a file of the wrong kind, a truncated file or a file whose tensors do not
fit the network is a JudgeLoadError naming the file.
"""

import json
from collections.abc import Callable
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from networks.conv_encoder import ConvEncoder
from networks.judges.errors import JudgeLoadError, short_reason
from networks.judges.synth_nets import UNetParser, tiny_clip

BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "clip": tiny_clip, "identity": ConvEncoder, "parser": UNetParser, "attributes": ConvEncoder,
}


def save_judge(net: nn.Module, path: str | Path, kind: str, sizes: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().contiguous().cpu() for name, tensor in net.state_dict().items()}
    save_file(tensors, path, metadata={"judge": kind, "sizes": json.dumps(sizes)})


def build_judge_net(kind: str, sizes: dict) -> nn.Module:
    return BUILDERS[kind](**sizes)


def load_judge_net(path: str | Path, kind: str) -> nn.Module:
    """The network stored in `path`, which must hold a `kind` judge (clip, identity, parser or attributes)."""
    path = Path(path)
    if not path.is_file():
        raise JudgeLoadError(f"{path}: no such {kind} judge file. Train the synth judges with "
                             f"`make pretrain-judges`, or set judges.{kind} to the file you have.")
    try:
        with safe_open(path, framework="pt") as file:
            metadata = file.metadata() or {}
            tensors = {name: file.get_tensor(name) for name in file.keys()}
    except (SafetensorError, OSError) as error:
        raise JudgeLoadError(f"{path}: not a readable safetensors file ({error}); it may be truncated. "
                             f"Run `make pretrain-judges` again.") from error
    if metadata.get("judge") != kind:
        raise JudgeLoadError(f"{path}: holds a {metadata.get('judge') or 'non-judge'} network, not a {kind} judge")
    net = build_judge_net(kind, json.loads(metadata["sizes"]))
    try:
        net.load_state_dict(tensors)
    except RuntimeError as error:
        reason = short_reason(error)
        raise JudgeLoadError(f"{path}: tensors do not fit the {kind} network ({reason})") from error
    return net
