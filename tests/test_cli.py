"""The `h2r` command line itself: every stage's subcommand is there, and a stage whose cli module
fails to import is an error naming it (it used to vanish from `h2r --help` silently)."""
from __future__ import annotations

import sys

import pytest

from h2r import cli


def test_every_stage_registers_its_command():
    usage = cli.build_parser().format_help()
    assert all(f"    {name}" in usage for name in cli.STAGES), usage


@pytest.mark.parametrize("broken", ["missing", "raises"])
def test_a_stage_that_fails_to_import_is_an_error_naming_it(broken, tmp_path, monkeypatch, capsys):
    if broken == "missing":
        module = "h2r.no_such_stage_cli"
    else:  # a cli module that exists but breaks while importing (e.g. a dependency gone)
        (tmp_path / "broken_stage_cli.py").write_text("import no_such_dependency_h2r\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        module = "broken_stage_cli"
    monkeypatch.setitem(cli.STAGES, "broken", module)
    capsys.readouterr()
    assert cli.main(["data", "catalogue", "--json"]) == 1
    err = capsys.readouterr().err
    assert "the `h2r broken` command cannot be loaded" in err and module in err
    assert "ModuleNotFoundError" in err
    sys.modules.pop(module, None)


def test_documented_commands_still_parse():
    parser = cli.build_parser()
    for argv in (["data", "catalogue", "--json"], ["data", "stats", "D", "--refresh"],
                 ["data", "show", "D", "--out", "s.png"], ["eval", "settings"],
                 ["eval", "--workdir", "W", "--setting", "sort_eggs", "--out", "r.json"],
                 ["eval", "offline", "--workdir", "W", "--out", "o.json"],
                 ["study", "status", "--workdir", "S", "-v"], ["study", "report", "--workdir", "S"],
                 ["checkpoint", "info", "W", "--json"]):
        args, extra = parser.parse_known_args(argv)
        assert callable(args.func) and not extra, argv
