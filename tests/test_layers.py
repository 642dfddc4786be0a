"""The import-direction contracts of ``pyproject.toml`` hold, and the check does catch an upward arrow.

``lint-imports`` reads ``[tool.importlinter]``: ``cli`` > ``training | serving`` >
``scoring`` > ``features`` > ``orderguard`` (the kernel), and only ``cli`` uses the
simulator. Imports inside functions count: a lazy import is still an arrow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = str(Path(sys.executable).with_name("lint-imports"))


def _lint(cwd: Path, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([LINT, "--config", str(config), "--no-cache"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_the_tree_keeps_every_contract() -> None:
    result = _lint(ROOT, ROOT / "pyproject.toml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_lazy_upward_import_breaks_the_layers(tmp_path: Path) -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    config = tomllib.loads(text)["tool"]["importlinter"]
    for package in config["root_packages"]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "orderguard" / "clock.py").write_text("def now() -> None:\n    from serving import app  # noqa\n")
    (tmp_path / "serving" / "app.py").write_text("")
    (tmp_path / "simulate" / "world.py").write_text("import features\n")
    copy = tmp_path / "contracts.toml"
    copy.write_text("[tool.importlinter]" + text.split("[tool.importlinter]", 1)[1], encoding="utf-8")
    result = _lint(tmp_path, copy)
    assert result.returncode != 0
    assert "orderguard.clock -> serving.app" in result.stdout
    assert "simulate.world -> features" in result.stdout
