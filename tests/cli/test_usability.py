"""The command line as a newcomer meets it: help for everything, plain flags, one-line answers to mistakes,
read-only commands that leave nothing behind, reports that are never cut in a pipe."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from cli import app
from features.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command under ``group`` with its path (Typer's command classes, duck-typed: Typer bundles click)."""
    yield path, group
    if hasattr(group, "list_commands"):
        ctx = typer.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            yield from _commands(command, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "orderguard" for p, _ in COMMANDS])
def test_every_command_option_and_argument_has_help(path: tuple[str, ...], command: Any) -> None:
    assert command.help, f"orderguard {' '.join(path)} has no help"
    for param in command.params:
        if param.name in ("help", "install_completion", "show_completion"):
            continue
        assert getattr(param, "help", None), f"orderguard {' '.join(path)}: {param.name} has no help"


def test_flags_read_as_flags_in_help() -> None:
    result = CliRunner().invoke(app, ["train", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--promote / --no-promote" in result.output
    assert "<bool>" not in result.output


def test_help_points_only_at_readme_sections_that_exist() -> None:
    headings = set(re.findall(r"^#+ (.+)$", README.read_text(encoding="utf-8"), re.M))
    for path, command in COMMANDS:
        for section in re.findall(r'"([^"]+)" in README', command.help or ""):
            assert section in headings, f"orderguard {' '.join(path)} points at a missing README section {section!r}"


def test_ingesting_a_missing_file_says_so_and_stores_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), "ingest", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    missing = tmp_path / "nope.jsonl"
    assert result.stderr.strip() == f"error[not_found]: `files` must be existing files; no such file: {missing}"
    assert not (tmp_path / "data").exists()


def test_an_ingest_that_refuses_every_row_says_nothing_was_stored(tmp_path: Path) -> None:
    bad = tmp_path / "jd.jsonl"
    bad.write_text('{"orderId": ""}\n{"nothing": 1}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), "ingest", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == "error[invalid_input]: 2 row(s) refused; nothing was stored"


@pytest.mark.parametrize("command", [["model"], ["model", "history"], ["label", "history", "site:1"], ["train"],
                                     ["promote"], ["rules-report"]])
def test_read_only_commands_create_no_folder_or_database(tmp_path: Path, command: list[str]) -> None:
    data = tmp_path / "nonexistent"
    result = CliRunner().invoke(app, ["--data-dir", str(data), *command])
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output
    assert not data.exists(), f"orderguard {' '.join(command)} created {sorted(p.name for p in data.rglob('*'))}"


def test_model_answers_in_json_for_scripts(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "model", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"champion": None, "tracking_uri": f"sqlite:///{tmp_path.resolve()}/mlflow.db"}


def test_piped_tables_keep_whole_file_names(tmp_path: Path) -> None:
    long = tmp_path / "wechat_channels_export_2024_11_shop_number_one.jsonl"
    long.write_text('{"nothing": 1}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), "ingest", str(long), "--channel",
                                      "wechat"])
    assert long.name in result.stdout  # CliRunner's output is not a terminal, like a pipe


def test_the_demo_keeps_its_data_where_every_command_looks_by_default() -> None:
    demo = (README.parent / "scripts" / "demo.sh").read_text(encoding="utf-8")
    (default,) = re.findall(r"export ORDERGUARD_DATA_DIR=\$\{ORDERGUARD_DATA_DIR:-([^}]+)\}", demo)
    assert Path(default) == Settings.model_fields["data_dir"].default
