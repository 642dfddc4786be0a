"""``python -m cli``: the ``orderguard`` command, for environments without the installed script."""

from cli import main

main()
