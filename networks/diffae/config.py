"""Architecture hyper-parameters of a DiffAE model and the named presets."""

from dataclasses import dataclass


@dataclass(frozen=True)
class DiffAEArch:
    image_size: int
    model_channels: int
    channel_mult: tuple[int, ...]
    enc_channel_mult: tuple[int, ...]  # levels of the "unet" encoder
    attention_resolutions: tuple[int, ...]  # feature-map sides with self-attention (denoiser and encoder)
    num_res_blocks: int = 2
    embed_channels: int = 512  # time embedding width
    z_dim: int = 512  # width of z_sem
    num_heads: int = 1
    dropout: float = 0.1
    in_channels: int = 3
    patch_size: int = 1  # >1: pixel-unshuffle the image into patches first (cheap small models; official: 1)
    encoder: str = "unet"  # "unet": the official half-UNet; "resnet": networks.conv_encoder, model_channels/2 wide

    def __post_init__(self):
        if self.encoder not in ("unet", "resnet"):
            raise ValueError(f"unknown DiffAE encoder {self.encoder!r}; choose 'unet' or 'resnet'")


PRESETS: dict[str, DiffAEArch] = {
    # The official checkpoints (phizaz/diffae templates.py): 168,492,291 and 128,545,155 parameters.
    "ffhq256_autoenc": DiffAEArch(256, 128, (1, 1, 2, 2, 4, 4), (1, 1, 2, 2, 4, 4, 4), (16,)),
    "ffhq128_autoenc": DiffAEArch(128, 128, (1, 1, 2, 3, 4), (1, 1, 2, 3, 4, 4), (16,)),
    # Small presets for the synth world: 64x64 SynthFace in 2x2 patches (a 32x32 UNet), trainable on 2 CPU cores.
    "synth64": DiffAEArch(64, 64, (1, 2, 2), (1, 2, 2, 2), (16, 8), num_res_blocks=1, embed_channels=256, z_dim=256,
                          dropout=0.0, patch_size=2),
    "synth64_tiny": DiffAEArch(64, 32, (1, 2), (1, 2, 2), (16,), num_res_blocks=1, embed_channels=64, z_dim=64,
                               dropout=0.0, patch_size=2),
    # synth64's denoiser under a BatchNorm ResNet encoder: the official encoder, at this size and training budget,
    # does not learn a smile or make-up (weights/synth/backbone.md, stage 3).
    "synth64_resnet": DiffAEArch(64, 64, (1, 2, 2), (), (16, 8), num_res_blocks=1, embed_channels=256, z_dim=256,
                                 dropout=0.0, patch_size=2, encoder="resnet"),
}


def preset(name: str) -> DiffAEArch:
    if name not in PRESETS:
        raise ValueError(f"unknown DiffAE preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]
