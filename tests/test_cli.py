import subprocess
import sys

import pytest

from chatface.cli import main


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
