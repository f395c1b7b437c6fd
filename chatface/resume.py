"""Every long run keeps one `last.ckpt` in its run folder and continues from it when started again."""

from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint


def last_checkpoint_callback(run_dir: Path, every_n_steps: int) -> ModelCheckpoint:
    """Overwrites `run_dir/last.ckpt` every `every_n_steps`. Without the version counter Lightning would write
    last-v1.ckpt beside a last.ckpt it did not write itself (one copied in to branch a run), and the next restart
    would resume from the older file."""
    return ModelCheckpoint(dirpath=run_dir, every_n_train_steps=every_n_steps, save_last=True, save_top_k=0,
                           enable_version_counter=False)


def last_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint to resume from, or None for a fresh run."""
    last = run_dir / "last.ckpt"
    return last if last.exists() else None
