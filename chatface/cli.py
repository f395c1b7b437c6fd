"""The `chatface` command line. Every command takes `key=value` config overrides after its options.

    chatface synth preview                   a PNG grid of SynthFace faces, class maps and captions
    chatface synth face --out face.png       one held-out SynthFace face to edit
    chatface pretrain backbone               train the synth-world DiffAE (resumes), export its EMA weights
    chatface pretrain judges                 train the synth judges (CLIP, identity, parser, attributes)
    chatface eval backbone --json            reconstruction / semantic-decoding PSNR on held-out faces
    chatface backbone preview                inputs, reconstructions, semantic decodings, interpolation
    chatface train attr=smile                train one attribute's mapper, logged to MLflow
    chatface eval mapper attr=smile --json   edit_success, leakage, id, sc, sdir on held-out faces
    chatface grid attr=smile                 a PNG of edits over strength and step count
    chatface edit face.png --edits smile:1   edit an image with trained mappers
    chatface edit face.png --request "..."   the same, from a request in words
    chatface parse "add glasses" --json      the edit plan a request becomes
    chatface chat face.png                   multi-turn chat editing ("more", "undo", "also add glasses")
    chatface sweep attr=curly_hair           Optuna sweep of the mapper (sweep.trials=, sweep.workers=, ...)
    chatface leaderboard                     ChatFace vs StyleCLIP, DiffusionCLIP, Asyrp, DiffAE linear direction
    chatface ui --port 5000                  the MLflow UI on 127.0.0.1
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


def _synth_face(args, cfg) -> None:
    from chatface.images import save_image
    from datamodules.synthface import SynthFaceDataset

    face = SynthFaceDataset("test", args.index + 1, args.index + 1, cfg.world.image_size)[args.index]
    save_image(face["image"], args.out)
    print(f"{args.out}: held-out test face {args.index}: {face['caption']}")


def _pretrain_backbone(args, cfg) -> None:
    from chatface.pretrain import pretrain_backbone

    print(f"backbone weights written to {pretrain_backbone(cfg)}")


def _pretrain_judges(args, cfg) -> None:
    from chatface.pretrain_judges import KINDS, pretrain_judges

    for path in pretrain_judges(cfg, args.only or KINDS):
        print(f"judge weights written to {path}")


def _eval_backbone(args, cfg) -> None:
    from chatface.backbone_eval import evaluate_backbone

    result = evaluate_backbone(cfg, faces=args.faces)
    if args.oracle_faces and cfg.judges.attributes:
        from chatface.backbone_oracle import clip_sees_oracle, oracle_edits, z_sem_following

        edits = oracle_edits(cfg, faces=args.oracle_faces)
        result["oracle_edit_success"] = round(sum(e["oracle"]["edit_success"] for e in edits.values()) / len(edits), 3)
        result["edits_per_attr"] = edits
        result["clip_sees_oracle_per_attr"] = clip_sees_oracle(edits)
        result["z_sem_following_per_attr"] = z_sem_following(cfg, faces=min(16, args.oracle_faces))
    print(json.dumps(result, indent=None if args.json else 2))


def _backbone_preview(args, cfg) -> None:
    from chatface.backbone_eval import backbone_preview

    print(backbone_preview(cfg, Path(args.out)))


def _train_mapper(args, cfg) -> None:
    from chatface.train_mapper import mapper_dir, train_mapper

    metrics = train_mapper(cfg, cfg.attr)
    print(json.dumps(metrics, indent=2))
    print(f"mapper, grid and metrics in {mapper_dir(cfg, cfg.attr)}")


def _eval_judges(args, cfg) -> None:
    from chatface.judges_eval import evaluate_judges

    print(json.dumps(evaluate_judges(cfg, args.identities), indent=None if args.json else 2))


def _eval_mapper(args, cfg) -> None:
    from chatface.mapper_eval import evaluate_mapper

    result = evaluate_mapper(cfg, cfg.attr, args.strength, args.mapper)
    print(json.dumps(result, indent=None if args.json else 2))


def _mapper_grid(args, cfg) -> None:
    from chatface.mapper_eval import strength_steps_grid

    print(strength_steps_grid(cfg, cfg.attr))


def _edit(args, cfg) -> None:
    from chat.commands import plan_request
    from chatface.edit_image import edit_image, parse_edits

    if args.request:
        plan = plan_request(args.request, cfg)
        print(f"plan: {plan.describe()}")
        edits, steps = [(edit.attribute, edit.strength) for edit in plan.edits], plan.steps
    else:
        edits, steps = parse_edits(args.edits), args.steps
    edited, grid = edit_image(cfg, args.image, edits, steps, args.out)
    print(f"edited image: {edited}\nbefore/after: {grid}")


def _parse(args, cfg) -> None:
    from chat.commands import parse_request

    print(json.dumps(parse_request(args.request, cfg), indent=None if args.json else 2))


def _chat(args, cfg) -> None:
    from chat.commands import run_chat
    from chat.parsers import make_parser
    from chat.session import ChatSession
    from chatface.chat_editing import plan_renderer
    from chatface.editor import Editor
    from chatface.images import load_image

    folder = Path(args.session or Path(cfg.output_dir) / "chat" / Path(args.image).stem)
    render = plan_renderer(Editor.from_config(cfg), load_image(args.image, cfg.world.image_size))
    parser = make_parser(cfg.chat)
    if (folder / "session.json").exists() and not args.new:
        session = ChatSession.restore(folder / "session.json", parser, render)
        print(f"resuming the session in {folder} (--new starts afresh); plan: {session.plan.describe()}")
    else:
        session = ChatSession(parser, render, folder, image=str(args.image))
    run_chat(session, input, print)


def _sweep(args, cfg) -> None:
    from chatface.sweep import run_sweep

    run_sweep(cfg, cfg.attr)


def _leaderboard(args, cfg) -> None:
    from chatface.leaderboard import run_leaderboard

    run_leaderboard(cfg)


def _ui(args, cfg) -> None:
    from chatface.mlflow_ui import serve_ui

    serve_ui(cfg, args.port)


def _show_config(args, cfg) -> None:
    from omegaconf import OmegaConf

    print(OmegaConf.to_yaml(cfg))


def _judge_kinds(text: str) -> tuple[str, ...]:
    from chatface.pretrain_judges import KINDS

    kinds = tuple(text.split(","))
    if unknown := [kind for kind in kinds if kind not in KINDS]:
        raise argparse.ArgumentTypeError(f"unknown judge {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    return kinds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatface", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Overrides: any config key, e.g. `world=ffhq256 data.batch_size=8 mapper.lr=0.1`; "
               "`chatface config` lists them all.")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    def command(group, name, handler, help_text, positionals=()):
        sub = group.add_parser(name, help=help_text, description=help_text)
        for positional, positional_help in positionals:  # before the overrides, which take the rest
            sub.add_argument(positional, help=positional_help)
        sub.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
        sub.set_defaults(handler=handler)
        return sub

    synth = groups.add_parser("synth", help="the SynthFace world").add_subparsers(dest="command", required=True)
    preview = command(synth, "preview", _synth_preview, "write a PNG grid of faces, class maps and captions")
    preview.add_argument("--out", default="runs/preview/synthface.png", help="PNG to write")
    preview.add_argument("--count", type=int, default=16, help="number of faces")
    preview.add_argument("--size", type=int, default=128, help="image side in pixels")
    preview.add_argument("--seed", type=int, default=0, help="first sample seed")

    face = command(synth, "face", _synth_face, "write one held-out SynthFace face as a PNG, to edit or chat with")
    face.add_argument("--out", default="runs/faces/face.png", help="PNG to write")
    face.add_argument("--index", type=int, default=0, help="which held-out test face")

    pretrain = groups.add_parser("pretrain", help="pretrain synth-world networks").add_subparsers(
        dest="command", required=True)
    command(pretrain, "backbone", _pretrain_backbone,
            "train the DiffAE backbone on SynthFace (resumes from runs/backbone/<world>/last.ckpt), logging to "
            "MLflow, then export the EMA weights to backbone.weights")
    pj = command(pretrain, "judges", _pretrain_judges,
                 "train the synth judges (CLIP, identity, parser, attributes) on a rendered SynthFace cache "
                 "(each resumes from runs/judges/<kind>/last.ckpt), logging to MLflow, then export them to "
                 "the judges.* paths")
    pj.add_argument("--only", type=_judge_kinds, metavar="KIND[,KIND...]",
                    help="train only these judges, comma-separated: clip, identity, parser, attributes")

    evaluate = groups.add_parser("eval", help="measure networks on held-out faces").add_subparsers(
        dest="command", required=True)
    ev = command(evaluate, "backbone", _eval_backbone,
                 "psnr_T20, psnr_T8 (invert + decode), psnr_semantic (z_sem with random x_T), seconds per image; "
                 "in the synth world also oracle_edit_success: how often the z_sem of the face with an attribute "
                 "switched on, decoded from the face's own x_T (T = 8), shows it (the ceiling for any mapper), "
                 "edits_per_attr: every edit metric of that oracle edit and of the true edit (the rendered pair), "
                 "clip_sees_oracle: the oracle's shift of the CLIP embedding along the text direction over the "
                 "true edit's (near 0: CLIP cannot guide a mapper to it), "
                 "and z_sem_following: how far one denoising step moves towards the attribute that only z_sem names")
    ev.add_argument("--json", action="store_true", help="print one JSON line")
    ev.add_argument("--faces", type=int, default=256, help="held-out test faces to use")
    ev.add_argument("--oracle-faces", type=int, default=64, help="held-out faces for the oracle edit; 0 skips it")

    ej = command(evaluate, "judges", _eval_judges,
                 "clip_zero_shot_acc, clip_direction_top1, id_roc_auc, id_tar_at_far_1e-3, parser_miou, "
                 "attribute_acc of the synth judges on held-out identities")
    ej.add_argument("--json", action="store_true", help="print one JSON line")
    ej.add_argument("--identities", type=int, default=256, help="held-out identities (two faces each)")
    em = command(evaluate, "mapper", _eval_mapper,
                 "edit_success, leakage, id, sc, sdir of the mapper of attr=<name> on held-out test faces")
    em.add_argument("--json", action="store_true", help="print one JSON line")
    em.add_argument("--strength", type=float, default=1.0, help="edit strength s")
    em.add_argument("--mapper", help="a mapper.safetensors to evaluate instead of the attribute's current one")

    command(groups, "train", _train_mapper,
            "train the mapper of attr=<name> (the same settings resume their run under "
            "runs/mappers/<world>/<attr>/runs/), log it to MLflow; the finished mapper becomes the attribute's "
            "current one")
    command(groups, "grid", _mapper_grid,
            "PNG of the mapper of attr=<name> over strengths (columns) and step counts T (rows)")
    edit = command(groups, "edit", _edit, "edit one image with trained mappers", [
        ("image", "the face to edit (PNG/JPEG; resized and centre-cropped to the world's size)")])
    what = edit.add_mutually_exclusive_group(required=True)
    what.add_argument("--edits", help="attr:strength pairs, e.g. 'smile:1.0,glasses:0.8'")
    what.add_argument("--request", help="the edit in words, e.g. 'make her smile and add glasses' (chat.parser)")
    edit.add_argument("--steps", type=int, default=8, help="DDIM steps T (fewer: stronger edit, less detail)")
    edit.add_argument("--out", help="where to write the edited image (default: <image>_edited.png)")

    parse = command(groups, "parse", _parse, "turn a request in words into an edit plan (offline or LLM parser)",
                    [("request", "e.g. 'make her smile a bit and add glasses'")])
    parse.add_argument("--json", action="store_true", help="print one JSON line")
    chat = command(groups, "chat", _chat, "edit a face by chatting, turn by turn (each turn's image is saved)",
                   [("image", "the face to edit")])
    chat.add_argument("--session", help="session folder (default: runs/chat/<image name>); resumed if it exists")
    chat.add_argument("--new", action="store_true", help="start a new session even if one is saved there")

    backbone = groups.add_parser("backbone", help="look at the backbone").add_subparsers(dest="command", required=True)
    bp = command(backbone, "preview", _backbone_preview,
                 "PNG rows: inputs, T=8 reconstructions, semantic decodings, z_sem interpolation")
    bp.add_argument("--out", default="runs/preview/backbone.png", help="PNG to write")

    command(groups, "sweep", _sweep,
            "Optuna sweep of the mapper of attr=<name> (resumes; sweep.trials=, sweep.workers=, sweep.storage=, "
            "sweep.objective=...), every trial a nested MLflow run; registers the best as chatface-<world>-<attr>")
    command(groups, "leaderboard", _leaderboard,
            "every method (leaderboard.methods) x attribute (leaderboard.attrs) on the same leaderboard.faces "
            "held-out faces: Sdir, SC, ID (+ edit accuracy, leakage in synth) with bootstrap intervals and "
            "wall time; trains what is missing, reuses the rest -> runs/leaderboard/<world>/ (md, csv, png)")
    ui = command(groups, "ui", _ui, "the MLflow UI over tracking.tracking_uri, on 127.0.0.1")
    ui.add_argument("--port", type=int, default=5000, help="port to serve on")

    command(groups, "config", _show_config, "print the resolved configuration (with your overrides)")
    return parser


def parse_command(argv: list[str] | None = None) -> argparse.Namespace:
    """The command, its options and `overrides`: every key=value, before or after the options."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may also come after a command's options (`edit face.png --edits smile:1 world=synth`).
    if unknown := [item for item in extra if item.startswith("-") or "=" not in item]:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = [*args.overrides, *extra]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_command(argv)
    try:
        cfg = load_config(args.overrides)
    except ConfigError as error:
        print(f"chatface: {error}", file=sys.stderr)
        return 2
    try:
        args.handler(args, cfg)
    except _user_errors() as error:
        print(f"chatface: {error}", file=sys.stderr)
        return 2
    return 0


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors caused by input (a file, a name, a setting) whose message already says what to do: no traceback."""
    from chat.intent import ParseError
    from chat.plan import PlanError
    from chat.session import SessionFileError
    from chatface.catalog import UnknownAttributeError
    from chatface.edit_image import EditsSyntaxError
    from chatface.editor import MapperMissingError
    from chatface.images import ImageLoadError
    from chatface.leaderboard_methods import UnknownMethodError
    from chatface.sweep_storage import SweepError
    from datamodules.image_folder import NotEnoughImagesError
    from networks.diffae.checkpoint import CheckpointError
    from networks.judges.errors import JudgeLoadError
    from networks.mapper_checkpoint import MapperLoadError

    return (ConfigError, ParseError, PlanError, SessionFileError, UnknownAttributeError, EditsSyntaxError,
            MapperMissingError, ImageLoadError, CheckpointError, JudgeLoadError, MapperLoadError, SweepError,
            UnknownMethodError, NotEnoughImagesError)


if __name__ == "__main__":
    sys.exit(main())
