"""Replace a file's contents atomically: a reader sees the old file or the new one, never half of either.

The text goes to a temporary file in the same folder (same file system, so the rename is
atomic) which then replaces the target; on any failure the temporary file is removed and
the target is left as it was.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; the parent folder must exist.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "card.md"
    >>> write_text_atomic(target, "v1") == target, target.read_text(encoding="utf-8")
    (True, 'v1')
    """
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
