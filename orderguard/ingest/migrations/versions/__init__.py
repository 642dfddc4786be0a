"""Revisions of the order log schema (a package only so that it ships with the wheel)."""
