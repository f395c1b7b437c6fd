import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from chatface.cli import main, parse_command
from chatface.config import load_config


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("synth", "pretrain", "eval", "backbone", "config"):
        assert command in out


def test_bad_override_exits_2_with_a_message(capsys):
    assert main(["config", "mapper.lrr=1"]) == 2
    assert "unknown config key 'mapper.lrr'" in capsys.readouterr().err


def test_config_prints_the_resolved_values(capsys):
    assert main(["config", "mapper.lr=0.05"]) == 0
    assert "lr: 0.05" in capsys.readouterr().out


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "chatface.cli", "config", "world=ffhq256"],
                            capture_output=True, text=True, check=True)
    assert "ffhq256_autoenc" in result.stdout


MAKE_TARGETS = ("preview", "pretrain-backbone", "pretrain-backbone-encoder", "pretrain-backbone-resnet",
                "pretrain-backbone-walk", "eval-backbone", "backbone-preview", "pretrain-judges", "eval-judges",
                "train", "eval-mapper", "grid", "edit", "chat", "sweep", "ui", "leaderboard")


@pytest.mark.parametrize("target", MAKE_TARGETS)
def test_every_make_target_gives_the_cli_a_command_it_parses_with_valid_overrides(target):
    """`make -n` prints the target's commands without running them; each chatface command in it must parse and
    its overrides (the world and ARGS included, after the options) must name real config keys."""
    variables = ["IMAGE=face.png", "EDITS=smile:1.0", "TRIALS=2", "WORKERS=2", "STORAGE=sqlite:///s.db",
                 "ATTRS=smile,glasses", "N=5", "ARGS=trainer.seed=3"]
    printed = subprocess.run(["make", "-n", target, *variables], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parents[1]).stdout.replace("\\\n", " ")
    commands = [shlex.split(line)[1:] for line in printed.splitlines() if line.startswith(".venv/bin/chatface ")]
    assert commands, f"make {target} runs no chatface command"
    for argv in commands:
        args = parse_command(argv)
        assert {"world=synth", "trainer.seed=3"} <= set(args.overrides)
        assert load_config(args.overrides).trainer.seed == 3


def test_pretrain_judges_takes_a_comma_separated_list_of_judges(capsys):
    assert parse_command(["pretrain", "judges", "--only", "clip,parser", "world=synth"]).only == ("clip", "parser")
    with pytest.raises(SystemExit):
        parse_command(["pretrain", "judges", "--only", "clip,bogus"])
    assert "unknown judge bogus" in capsys.readouterr().err
