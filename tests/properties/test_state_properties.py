"""advance_order (the order log's fast path) agrees with derive_order on any split of history."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from orderguard.ingest.state import advance_order, derive_order
from orderguard.schema import OrderEvent
from tests.factories import event_streams


@settings(max_examples=80)
@given(event_streams(), st.data())
def test_advancing_the_stored_state_equals_rederiving_from_all_events(events: list[OrderEvent],
                                                                      data: st.DataObject) -> None:
    for key in {e.key for e in events}:
        unique = sorted({e.event_version: e for e in events if e.key == key}.values(), key=lambda e: e.event_version)
        split = data.draw(st.integers(min_value=1, max_value=len(unique)))
        base = derive_order(unique[:split])
        if base is None:
            continue
        assert advance_order(base, unique[split:]) == derive_order(unique)
