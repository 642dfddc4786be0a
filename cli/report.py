"""``orderguard report``: the monthly or campaign report for the shop owner (HTML, optionally PDF)."""

from __future__ import annotations

from cli.common import command_group

#: ``orderguard report`` (a top-level command).
app = command_group()
