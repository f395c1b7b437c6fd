"""LightningDataModules: SynthFace, image folders (CelebA-HQ / FFHQ), cached latents."""
