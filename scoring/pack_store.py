"""Rule packs as versioned data: every applied pack, who applied it, when, and what changed.

Shops change their rules often (tighter before a promotion, looser after), so a pack is
data the service reads at run time, not a file read at start-up. The ``rule_packs``
table (migration 0010, beside the order log) is an append-only log of changes, numbered
1, 2, ... across two roles:

``live``
    the pack that decides. The newest ``live`` row is the one served.
``shadow`` / ``shadow_off``
    a candidate judged beside the live pack on the same features, never deciding
    (``scoring.scorer``), optionally with its own decision bands; ``shadow_off`` ends it.

Every row keeps the YAML text, its SHA-256, the author (a user's name, ``key:<name>
(<prefix>)`` for an API key, ``cli:<login>`` or ``file:<path>``), the unified diff against
the live pack before it, a note, and for a rollback the version it restores.

A pack is validated against the service's feature set *before* it is stored: a bad pack
is refused naming the field (``rules[3].when.feature``) and nothing is written.
Publishing the text that is live already is a no-op that returns the live version, so a
retried publish never makes a second version.

Start-up (:meth:`PackStore.adopt_file`): an empty store takes the configured file as
version 1; a configured file whose hash differs from the newest file-sourced version (an
operator edited the file or pointed the settings at another one) is published as a new
version; otherwise the stored live version serves, so a pack published through the API
or the CLI survives restarts.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from orderguard.errors import ConfigError, InvalidInputError, NotFoundError
from orderguard.ingest.orderlog import RULE_PACKS, connection_guard, redacted
from scoring.policy import Bands
from scoring.rules import RulePack, load_rules_text

Role = Literal["live", "shadow", "shadow_off"]
Source = Literal["file", "publish", "rollback", "shadow"]

#: Largest pack text accepted (bytes of UTF-8): a pack is a few hundred rules at most.
MAX_PACK_BYTES = 256 * 1024

#: Attempts at taking the next version number when other processes publish at the same moment.
_ATTEMPTS = 5


class InvalidPackError(InvalidInputError):
    """A rule pack that does not load against the feature set; ``field`` names the offending place."""

    code = "invalid_rule_pack"


def content_hash(text: str) -> str:
    """SHA-256 of the pack's text, as stored (the text is kept byte for byte, comments included).

    >>> content_hash("rules: []")[:12]
    '00eb8a0ecfec'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_bands(value: str | Sequence[float], *, field: str = "bands") -> Bands:
    """``"35,55,80"`` or ``[35, 55, 80]`` → verify, review and hold bands, checked.

    >>> parse_bands("30,50,75")
    Bands(verify=30.0, review=50.0, hold=75.0)
    >>> parse_bands("30,50")
    Traceback (most recent call last):
    ...
    orderguard.errors.InvalidInputError: `bands` must be three numbers verify,review,hold; got '30,50'
    """
    try:
        numbers = [float(v) for v in (value.split(",") if isinstance(value, str) else value)]
    except ValueError:
        numbers = []
    if len(numbers) != 3:
        raise InvalidInputError.must(field, "three numbers verify,review,hold", value)
    try:
        return Bands(*numbers)
    except ConfigError as e:
        raise InvalidInputError(field=field, constraint="0 < verify <= review <= hold <= 100", value=value) from e


@dataclass(frozen=True, slots=True)
class StoredPack:
    """One row of the pack log (``text`` and ``diff`` as stored)."""

    version: int
    role: Role
    content_hash: str
    author: str
    source: Source
    applied_at: datetime
    text: str
    diff: str
    note: str
    bands: Bands | None = None
    rollback_of: int | None = None

    @property
    def label(self) -> str:
        """How score records name the pack: ``v3:1f2e3d4c`` (version and the hash's first 8 digits)."""
        return f"v{self.version}:{self.content_hash[:8]}"


@dataclass(frozen=True, slots=True)
class Published:
    """What a publish did: the row now in force and whether it is new (``False``: the same text was live)."""

    pack: StoredPack
    changed: bool


@dataclass(frozen=True, slots=True)
class PackState:
    """The live pack and the shadow candidate in force (``None``: none), and the newest version number."""

    live: StoredPack | None
    shadow: StoredPack | None
    latest: int


def _row(row: sa.Row[Any]) -> StoredPack:
    m = row._mapping
    bands = m["bands"]
    return StoredPack(version=int(m["version"]), role=m["role"], content_hash=m["content_hash"], author=m["author"],
                      source=m["source"], applied_at=m["applied_at"], text=m["text"], diff=m["diff"], note=m["note"],
                      bands=Bands(*bands) if bands else None, rollback_of=m["rollback_of"])


def _no_aliases(text: str) -> None:
    """Refuse YAML anchors and aliases: a rule pack never needs them, and a few nested aliases within the size
    bound expand to billions of nodes once validated.

    >>> _no_aliases("a: &x [1]\\nb: *x")
    Traceback (most recent call last):
    ...
    scoring.pack_store.InvalidPackError: `text` must not use YAML anchors or aliases (&name, *name)
    """
    try:
        aliased = any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return  # the loader reports it, with its position
    if aliased:
        raise InvalidPackError("`text` must not use YAML anchors or aliases (&name, *name)", field="text")


def unified_diff(before: StoredPack | None, text: str, version: int) -> str:
    """The change from ``before`` (None: nothing) to ``text`` as a unified diff with version labels."""
    old = before.text if before is not None else ""
    lines = difflib.unified_diff(old.splitlines(keepends=True), text.splitlines(keepends=True),
                                 fromfile=before.label if before is not None else "(none)", tofile=f"v{version}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


class PackStore:
    """The ``rule_packs`` table on the order log's engine; validates against ``known_features`` before writing."""

    def __init__(self, engine: Engine, *, known_features: Collection[str]) -> None:
        self._engine = engine
        self._known = frozenset(known_features)
        self._where = redacted(engine.url)

    def _guard(self) -> AbstractContextManager[None]:
        """A lost database is a 503 naming it, as for every store in the order-log database."""
        return connection_guard("rule pack", self._where)

    # -- reading ---------------------------------------------------------------------------------------------------

    def latest_version(self) -> int:
        """The newest version number (0: empty): the cheap query every process polls."""
        with self._guard(), self._engine.connect() as conn:
            found = conn.execute(sa.select(sa.func.max(RULE_PACKS.c.version))).scalar_one()
        return int(found or 0)

    def state(self) -> PackState:
        """The live pack, the shadow candidate (if one runs) and the newest version, read together."""
        c = RULE_PACKS.c
        with self._guard(), self._engine.connect() as conn:
            live = conn.execute(sa.select(RULE_PACKS).where(c.role == "live").order_by(c.version.desc())
                                .limit(1)).first()
            shadow = conn.execute(sa.select(RULE_PACKS).where(c.role.in_(("shadow", "shadow_off")))
                                  .order_by(c.version.desc()).limit(1)).first()
            latest = conn.execute(sa.select(sa.func.max(c.version))).scalar_one()
        shadow_pack = _row(shadow) if shadow is not None else None
        return PackState(live=_row(live) if live is not None else None,
                         shadow=shadow_pack if shadow_pack is not None and shadow_pack.role == "shadow" else None,
                         latest=int(latest or 0))

    def get(self, version: int) -> StoredPack:
        """One version; :class:`NotFoundError` naming ``version`` when there is none."""
        with self._guard(), self._engine.connect() as conn:
            row = conn.execute(sa.select(RULE_PACKS).where(RULE_PACKS.c.version == version)).first()
        if row is None:
            raise NotFoundError(f"`version` must name a stored rule pack version; got {version}", field="version")
        return _row(row)

    def history(self, *, limit: int | None = None) -> list[StoredPack]:
        """Every change, newest first."""
        query = sa.select(RULE_PACKS).order_by(RULE_PACKS.c.version.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._guard(), self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def compile(self, text: str, *, source: str = "the rule pack") -> RulePack:
        """``text`` loaded against the feature set; a bad pack is :class:`InvalidPackError` naming the field."""
        size = len(text.encode("utf-8", errors="replace"))
        if size > MAX_PACK_BYTES:
            raise InvalidPackError(f"`text` must be at most {MAX_PACK_BYTES} bytes; got {size}", field="text")
        _no_aliases(text)
        try:
            return load_rules_text(text, source=source, known_features=self._known)
        except ConfigError as e:
            raise InvalidPackError(e.message, field=e.field or "text") from e

    # -- writing ---------------------------------------------------------------------------------------------------

    def publish(self, text: str, *, author: str, now: datetime, note: str = "", source: Source = "publish",
                rollback_of: int | None = None, origin: str = "the rule pack") -> Published:
        """Make ``text`` the live pack (validated first); the same text as the live pack is a no-op."""
        self.compile(text, source=origin)
        digest = content_hash(text)
        for _ in range(_ATTEMPTS):
            state = self.state()
            if state.live is not None and state.live.content_hash == digest:
                return Published(state.live, changed=False)
            version = state.latest + 1
            pack = StoredPack(version=version, role="live", content_hash=digest, author=author, source=source,
                              applied_at=now, text=text, diff=unified_diff(state.live, text, version), note=note,
                              rollback_of=rollback_of)
            if self._insert(pack):
                return Published(pack, changed=True)
        raise ConfigError("the rule pack log kept changing while publishing; try again", field="version")

    def rollback(self, version: int, *, author: str, now: datetime, note: str = "") -> Published:
        """Publish the text of ``version`` again as a new live version, recorded as a rollback to it."""
        target = self.get(version)
        if target.role == "shadow_off":
            raise InvalidInputError(f"`version` must name a rule pack; v{version} ended a shadow run", field="version")
        return self.publish(target.text, author=author, now=now, note=note or f"rollback to v{version}",
                            source="rollback", rollback_of=version)

    def set_shadow(self, text: str, *, author: str, now: datetime, bands: Bands | None = None, note: str = "",
                   origin: str = "the rule pack") -> Published:
        """Run ``text`` (and ``bands``, None: the live bands) as the shadow candidate; the same candidate is a
        no-op. The diff is against the live pack: what the candidate would change."""
        self.compile(text, source=origin)
        digest = content_hash(text)
        for _ in range(_ATTEMPTS):
            state = self.state()
            if state.shadow is not None and state.shadow.content_hash == digest and state.shadow.bands == bands:
                return Published(state.shadow, changed=False)
            version = state.latest + 1
            pack = StoredPack(version=version, role="shadow", content_hash=digest, author=author, source="shadow",
                              applied_at=now, text=text, diff=unified_diff(state.live, text, version), note=note,
                              bands=bands)
            if self._insert(pack):
                return Published(pack, changed=True)
        raise ConfigError("the rule pack log kept changing while setting the shadow; try again", field="version")

    def clear_shadow(self, *, author: str, now: datetime, note: str = "") -> Published | None:
        """End the shadow run (a ``shadow_off`` row); ``None`` when none runs."""
        for _ in range(_ATTEMPTS):
            state = self.state()
            if state.shadow is None:
                return None
            pack = StoredPack(version=state.latest + 1, role="shadow_off", content_hash="", author=author,
                              source="shadow", applied_at=now, text="", diff="", note=note or
                              f"shadow {state.shadow.label} ended")
            if self._insert(pack):
                return Published(pack, changed=True)
        raise ConfigError("the rule pack log kept changing while ending the shadow; try again", field="version")

    def adopt_file(self, path: Path, *, now: datetime) -> StoredPack:
        """The start-up rule (see the module docstring): the live pack to serve, after taking in ``path`` if
        the store is empty or the file changed since it was last taken in."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"`{path}` must be a readable YAML rule pack; {e}", field="rules") from e
        digest = content_hash(text)
        c = RULE_PACKS.c
        with self._guard(), self._engine.connect() as conn:
            last_file = conn.execute(sa.select(sa.func.max(c.version)).where(c.source == "file", c.role == "live")
                                     ).scalar_one()
            same_text = conn.execute(sa.select(sa.func.max(c.version)).where(c.content_hash == digest,
                                                                             c.role == "live")).scalar_one()
        # Taken in already when a live version holds this very text and none came from a (different) file after
        # it: an API publish of the same text counts, an edit of the file back to an older text does not.
        taken_in = same_text is not None and (last_file is None or same_text >= last_file)
        state = self.state()
        if state.live is None or not taken_in:
            try:
                return self.publish(text, author=f"file:{path}", now=now, source="file", note="configured file",
                                    origin=str(path)).pack
            except InvalidPackError as e:  # the configured file is configuration: a bad one stops the start
                raise ConfigError(e.message, field=e.field) from e
        return state.live

    def _insert(self, pack: StoredPack) -> bool:
        """Insert ``pack`` under its version; ``False`` when another process took that version first."""
        row = {"version": pack.version, "role": pack.role, "content_hash": pack.content_hash, "author": pack.author,
               "source": pack.source, "applied_at": pack.applied_at, "text": pack.text, "diff": pack.diff,
               "note": pack.note, "rollback_of": pack.rollback_of,
               "bands": [pack.bands.verify, pack.bands.review, pack.bands.hold] if pack.bands else None}
        try:
            with self._guard(), self._engine.begin() as conn:
                conn.execute(RULE_PACKS.insert().values(**row))
        except IntegrityError:
            return False
        return True
