"""The `chatface` command line. Every command takes `key=value` config overrides after its options.

    chatface synth preview                   a PNG grid of SynthFace faces, class maps and captions
    chatface pretrain backbone               train the synth-world DiffAE (resumes), export its EMA weights
    chatface eval backbone --json            reconstruction / semantic-decoding PSNR on held-out faces
    chatface backbone preview                inputs, reconstructions, semantic decodings, interpolation
    chatface config                          print the resolved configuration
"""

import argparse
import json
import sys
from pathlib import Path

from chatface.config import ConfigError, load_config


def _synth_preview(args, cfg) -> None:
    from synthface.preview import preview_grid

    print(preview_grid(Path(args.out), count=args.count, size=args.size, seed=args.seed))


def _pretrain_backbone(args, cfg) -> None:
    from chatface.pretrain import pretrain_backbone

    print(f"backbone weights written to {pretrain_backbone(cfg)}")


def _eval_backbone(args, cfg) -> None:
    from chatface.backbone_eval import evaluate_backbone

    result = evaluate_backbone(cfg, faces=args.faces)
    print(json.dumps(result, indent=None if args.json else 2))


def _backbone_preview(args, cfg) -> None:
    from chatface.backbone_eval import backbone_preview

    print(backbone_preview(cfg, Path(args.out)))


def _show_config(args, cfg) -> None:
    from omegaconf import OmegaConf

    print(OmegaConf.to_yaml(cfg))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatface", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Overrides: any config key, e.g. `world=ffhq256 data.batch_size=8 mapper.lr=0.1`; "
               "`chatface config` lists them all.")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    def command(group, name, handler, help_text):
        sub = group.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
        sub.set_defaults(handler=handler)
        return sub

    synth = groups.add_parser("synth", help="the SynthFace world").add_subparsers(dest="command", required=True)
    preview = command(synth, "preview", _synth_preview, "write a PNG grid of faces, class maps and captions")
    preview.add_argument("--out", default="runs/preview/synthface.png", help="PNG to write")
    preview.add_argument("--count", type=int, default=16, help="number of faces")
    preview.add_argument("--size", type=int, default=128, help="image side in pixels")
    preview.add_argument("--seed", type=int, default=0, help="first sample seed")

    pretrain = groups.add_parser("pretrain", help="pretrain synth-world networks").add_subparsers(
        dest="command", required=True)
    command(pretrain, "backbone", _pretrain_backbone,
            "train the DiffAE backbone on SynthFace (resumes from runs/backbone/<world>/last.ckpt), logging to "
            "MLflow, then export the EMA weights to backbone.weights")

    evaluate = groups.add_parser("eval", help="measure networks on held-out faces").add_subparsers(
        dest="command", required=True)
    ev = command(evaluate, "backbone", _eval_backbone,
                 "psnr_T20, psnr_T8 (invert + decode), psnr_semantic (z_sem with random x_T), seconds per image")
    ev.add_argument("--json", action="store_true", help="print one JSON line")
    ev.add_argument("--faces", type=int, default=256, help="held-out test faces to use")

    backbone = groups.add_parser("backbone", help="look at the backbone").add_subparsers(dest="command", required=True)
    bp = command(backbone, "preview", _backbone_preview,
                 "PNG rows: inputs, T=8 reconstructions, semantic decodings, z_sem interpolation")
    bp.add_argument("--out", default="runs/preview/backbone.png", help="PNG to write")

    command(groups, "config", _show_config, "print the resolved configuration (with your overrides)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = load_config(args.overrides)
    except ConfigError as error:
        print(f"chatface: {error}", file=sys.stderr)
        return 2
    args.handler(args, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
