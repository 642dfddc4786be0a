"""``orderguard policy ...``: what a rule pack or band change would do, before and beside the live one.

``backtest`` replays labelled history point in time through the live and a candidate
policy; ``shadow-report`` (``cli.shadow``) compares the live decisions with those a shadow
candidate recorded beside them.
"""

from __future__ import annotations

from cli import shadow
from cli.common import command_group

#: ``orderguard policy ...``.
app = command_group(no_args_is_help=True,
                    help="Policy lab: backtest a candidate rule pack or bands; compare a shadow candidate.")
app.add_typer(shadow.app)  # no name: its commands join this group
