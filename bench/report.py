"""Where every benchmark writes its figures: ``bench/results/<name>.json`` (git-ignored), one shape for all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

#: The folder of every benchmark's JSON results.
RESULTS_DIR = Path(__file__).parent / "results"


def write_results(path: Path, result: dict[str, Any], console: Console) -> None:
    """Write ``result`` as JSON to ``path`` (its folder made if needed) and say where, with the run's seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    seconds = result.get("seconds")
    console.print(f"written: {path}" + (f" ({seconds} s)" if seconds is not None else ""))
