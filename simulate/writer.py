"""Write a simulation to disk the way a shop would receive it.

``<channel>.jsonl`` holds that channel's native payloads (one per line, keys sorted,
UTF-8) in *arrival* order: mostly event order, but about 2 % of webhooks arrive late
(minutes to hours, a few over a day) and about 1 % are sent twice, the copy arriving
seconds to hours later -- exactly what idempotent, event-time ingest must absorb.
``ground_truth.csv`` labels every order; ``manifest.json`` records the configuration
and the counts. Nothing here knows a channel's format: payloads come from the
``encode`` callable (``simulate.channels`` in production use).

The shop systems' fulfilment reports go to ``fulfilment/fulfilment.jsonl`` (one report per
line, by time, as ``orderguard health ingest`` reads them) with their truth in
``fulfilment/fulfilment_truth.csv``. They sit in their own folder because everything
``*.jsonl`` at the top is a channel file named after its channel (``orderguard ingest``
takes the channel from the file name, and scripts hand it the whole folder).
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from orderguard.schema import Channel
from simulate.engine import Simulation
from simulate.fulfilment import TRUTH_COLUMNS as FULFILMENT_TRUTH_COLUMNS
from simulate.plain import PlainEvent
from simulate.rand import lognormal_delay, substream
from simulate.truth import ABUSE_PATTERNS, Pattern

Encoder = Callable[[PlainEvent], Mapping[str, Any]]

LATE_SHARE: Final = 0.02
DUPLICATE_SHARE: Final = 0.01
TRUTH_COLUMNS: Final = ("order_key", "channel", "order_id", "pattern", "is_abnormal", "group_id", "created_at",
                        "ops_issue")
FORMAT_VERSION: Final = 1
#: Folder (under the output folder) of the fulfilment reports and their truth.
FULFILMENT_DIR: Final = "fulfilment"


@dataclass(frozen=True, slots=True)
class Arrival:
    """One delivery of an event's webhook.

    Attributes:
        index: position of the event in the channel's event list.
        at: when it reaches the shop's endpoint, UTC (millisecond resolution).
        late: delivery held up well beyond the usual second or two.
        duplicate: a re-sent copy of a delivery that already happened.
    """

    index: int
    at: datetime
    late: bool = False
    duplicate: bool = False


def arrival_schedule(events: Sequence[PlainEvent], *, rng: random.Random, late_share: float = LATE_SHARE,
                     duplicate_share: float = DUPLICATE_SHARE) -> list[Arrival]:
    """When each event's webhook arrives, sorted by arrival (ties by event position).

    Every event arrives once, 0.2-3 s after its update time, or -- with ``late_share`` --
    minutes to a day and a half later; with ``duplicate_share`` it is re-sent once more.

    >>> from datetime import UTC
    >>> from simulate.plain import PlainBuyer
    >>> from orderguard.schema import Amounts, EventKind, OrderStatus
    >>> t = datetime(2024, 9, 1, tzinfo=UTC)
    >>> e = PlainEvent(Channel.SITE, "1", "s", EventKind.ORDER, OrderStatus.CREATED, t, t, PlainBuyer("u"), (),
    ...                Amounts(0, 0))
    >>> [a.duplicate for a in arrival_schedule([e], rng=random.Random(0), duplicate_share=1.0)]
    [False, True]
    """
    arrivals: list[Arrival] = []
    for index, event in enumerate(events):
        at = event.update_time + timedelta(milliseconds=rng.randint(200, 3000))
        late = rng.random() < late_share
        if late:
            at += lognormal_delay(rng, median=timedelta(minutes=15), sigma=1.6, floor=timedelta(minutes=1),
                                  cap=timedelta(hours=36))
        arrivals.append(Arrival(index, at, late=late))
        if rng.random() < duplicate_share:
            resend = at + lognormal_delay(rng, median=timedelta(minutes=3), sigma=1.8,
                                          floor=timedelta(seconds=5), cap=timedelta(hours=6))
            arrivals.append(Arrival(index, resend, duplicate=True))
    arrivals.sort(key=lambda a: (a.at, a.index, a.duplicate))
    return arrivals


@dataclass(frozen=True, slots=True)
class SimFiles:
    """Where a simulation was written (every channel has a file, possibly empty).

    Attributes:
        fulfilment: the shop systems' fulfilment reports, one JSON object per line, by time.
        fulfilment_truth: the order-health checks each order must fail (``order_key, fault,
            check, anchor_at``).
    """

    out_dir: Path
    channels: Mapping[Channel, Path]
    ground_truth: Path
    manifest: Path
    fulfilment: Path
    fulfilment_truth: Path


def _dumps(payload: Mapping[str, Any], event: PlainEvent) -> str:
    try:
        return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise TypeError(f"encode returned a payload JSON cannot hold for {event.channel.value}:"
                        f"{event.order_id} ({event.status.value})") from e


def write_simulation(sim: Simulation, out_dir: Path | str, *, encode: Encoder) -> SimFiles:
    """Write ``sim`` under ``out_dir`` (created if missing; existing files are replaced).

    Args:
        sim: the simulation to write.
        out_dir: target directory.
        encode: renders one :class:`PlainEvent` as its channel's native payload; it must
            return JSON-serialisable data. Called once per event (duplicates reuse it).

    Returns:
        The paths written. The output is byte-identical for identical ``sim`` and
        ``encode``: arrival jitter is seeded from the simulation's seed.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    by_channel: dict[Channel, list[PlainEvent]] = {c: [] for c in Channel}
    for event in sim.events:
        by_channel[event.channel].append(event)
    paths: dict[Channel, Path] = {}
    stats: dict[str, Counter[str]] = {k: Counter() for k in ("events", "lines", "late", "duplicates",
                                                               "out_of_order")}
    for channel, events in by_channel.items():
        path = root / f"{channel.value}.jsonl"
        paths[channel] = path
        arrivals = arrival_schedule(events, rng=substream(sim.config.seed, f"arrival/{channel.value}"))
        lines: dict[int, str] = {}
        newest: datetime | None = None
        with path.open("w", encoding="utf-8", newline="\n") as out:
            for arrival in arrivals:
                event = events[arrival.index]
                line = lines.get(arrival.index)
                if line is None:
                    line = lines[arrival.index] = _dumps(encode(event), event)
                out.write(line)
                out.write("\n")
                if newest is not None and event.update_time < newest:
                    stats["out_of_order"][channel.value] += 1
                newest = event.update_time if newest is None else max(newest, event.update_time)
        stats["events"][channel.value] = len(events)
        stats["lines"][channel.value] = len(arrivals)
        stats["late"][channel.value] = sum(a.late for a in arrivals)
        stats["duplicates"][channel.value] = sum(a.duplicate for a in arrivals)
    truth_path = _write_truth(sim, root / "ground_truth.csv")
    steps_path, steps_truth_path = _write_fulfilment(sim, root / FULFILMENT_DIR)
    manifest_path = root / "manifest.json"
    manifest = build_manifest(sim, stats=stats, channel_files={c: p.name for c, p in paths.items()},
                              truth_file=truth_path.name,
                              fulfilment_files=(steps_path.relative_to(root).as_posix(),
                                                steps_truth_path.relative_to(root).as_posix()))
    manifest_path.write_text(json.dumps(manifest, sort_keys=True, ensure_ascii=False, indent=2) + "\n",
                             encoding="utf-8")
    return SimFiles(root, MappingProxyType(paths), truth_path, manifest_path, steps_path, steps_truth_path)


def _write_fulfilment(sim: Simulation, folder: Path) -> tuple[Path, Path]:
    """``fulfilment.jsonl`` (reports by time, keys sorted) and ``fulfilment_truth.csv`` under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    steps = folder / "fulfilment.jsonl"
    with steps.open("w", encoding="utf-8", newline="\n") as out:
        for event in sim.fulfilment:
            out.write(json.dumps(event, sort_keys=True, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
    truth = folder / "fulfilment_truth.csv"
    with truth.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(FULFILMENT_TRUTH_COLUMNS)
        for row in sim.fulfilment_truth:
            writer.writerow((row.order_key, row.fault.value, row.check.value,
                             row.anchor_at.astimezone(UTC).isoformat(timespec="seconds")))
    return steps, truth


def _write_truth(sim: Simulation, path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(TRUTH_COLUMNS)
        for row in sim.truth:
            writer.writerow((row.order_key, row.channel.value, row.order_id, row.pattern.value,
                             "true" if row.is_abnormal else "false", row.group_id,
                             row.created_at.isoformat(timespec="seconds"), row.ops_issue.value))
    return path


def build_manifest(sim: Simulation, *, stats: Mapping[str, Mapping[str, int]], channel_files: Mapping[Channel, str],
                   truth_file: str, fulfilment_files: tuple[str, str] = ("", "")) -> dict[str, Any]:
    """The manifest: configuration, period, and counts per channel, per pattern and of the fulfilment reports."""
    orders = Counter(row.channel.value for row in sim.truth)
    pattern_orders = Counter(row.pattern.value for row in sim.truth)
    pattern_groups = Counter(p for p, g in {(r.pattern.value, r.group_id) for r in sim.truth} if g)
    abnormal = sum(row.is_abnormal for row in sim.truth)
    return {
        "format_version": FORMAT_VERSION,
        "generator": "simulate",
        "config": sim.config.to_dict(),
        "period": {"start_at": sim.config.start_at.isoformat(), "end_at": sim.config.end_at.isoformat()},
        "orders": {"total": len(sim.truth), "by_channel": {c.value: orders[c.value] for c in Channel}},
        "events": {"total": len(sim.events), "by_channel": {c.value: stats["events"][c.value] for c in Channel}},
        "delivery": {key: {c.value: stats[key][c.value] for c in Channel}
                     for key in ("lines", "late", "duplicates", "out_of_order")},
        "patterns": {p.value: {"orders": pattern_orders[p.value], "groups": pattern_groups[p.value],
                               "abnormal": p in ABUSE_PATTERNS} for p in Pattern},
        "abnormal_orders": abnormal,
        "abnormal_share": round(abnormal / len(sim.truth), 6) if sim.truth else 0.0,
        "ops_issues": dict(sorted(Counter(r.ops_issue.value for r in sim.truth if r.ops_issue.value).items())),
        "fulfilment": {
            "events": len(sim.fulfilment),
            "by_kind": dict(sorted(Counter(str(e["kind"]) for e in sim.fulfilment).items())),
            "truth_rows": len(sim.fulfilment_truth),
            "faulty_orders": len({r.order_key for r in sim.fulfilment_truth}),
            "by_fault": dict(sorted(Counter(r.fault.value for r in sim.fulfilment_truth).items())),
            "by_check": dict(sorted(Counter(r.check.value for r in sim.fulfilment_truth).items())),
        },
        "files": {"ground_truth": truth_file, "channels": {c.value: channel_files[c] for c in Channel},
                  "fulfilment": fulfilment_files[0], "fulfilment_truth": fulfilment_files[1]},
    }
