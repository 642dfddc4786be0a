"""``orderguard policy shadow-report``: the shadow candidate's recorded decisions against the live ones."""

from __future__ import annotations

from cli.common import command_group

#: Commands merged into ``orderguard policy``.
app = command_group()
