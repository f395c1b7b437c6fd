"""Metrics: Sdir, SC, ID and the SynthFace attribute metrics as torchmetrics, plus image-quality helpers."""
