"""Every command's and subcommand's --help renders (argparse formats help lazily: a stray '%' only fails here)."""

from __future__ import annotations

import pytest

from train.cli import COMMANDS as CLI_COMMANDS
from train.cli import main

COMMANDS = [[name] for name in CLI_COMMANDS] + [["data", sub] for sub in ("synth", "convert", "validate", "curate", "stats")]


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_help_renders(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    assert "usage: codevl " + " ".join(argv) in capsys.readouterr().out
