"""Channel encoders: clear-text simulator events → each platform's native payload.

The inverse of ``orderguard.ingest.channels``: ``encode(event, secret=...)`` renders a
:class:`~simulate.plain.PlainEvent` the way its channel would send it
(order document for ``EventKind.ORDER``, after-sale document for
``EventKind.AFTER_SALE``), as plain JSON types so the simulator can write JSONL. Each
channel's :class:`~simulate.channels.common.ChannelEncoder` in
``ENCODERS`` also tells which statuses its documents can state and how many SKU lines
an order may carry, so a generator can stay within what the platform can express.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from orderguard.schema import Channel
from simulate.channels import douyin, jd, kuaishou, site, tmall, wechat
from simulate.channels.common import ChannelEncoder
from simulate.plain import PlainEvent

__all__ = ["ENCODERS", "ChannelEncoder", "encode"]

#: Every channel's encoder, immutable.
ENCODERS: Mapping[Channel, ChannelEncoder] = MappingProxyType({
    Channel.TMALL: tmall.ENCODER,
    Channel.JD: jd.ENCODER,
    Channel.DOUYIN: douyin.ENCODER,
    Channel.KUAISHOU: kuaishou.ENCODER,
    Channel.WECHAT: wechat.ENCODER,
    Channel.SITE: site.ENCODER,
})


def encode(event: PlainEvent, *, secret: bytes) -> dict[str, Any]:
    """Render ``event`` in its channel's native format.

    Args:
        event: the clear-text event; ``event.channel`` picks the encoder.
        secret: key of the deterministic stand-ins for the platforms' ciphertexts
            (the same phone gives the same token under the same secret).

    Raises:
        ValueError: the channel cannot express the event (status without a code,
            more SKU lines than an order carries, after-sale event without refund …).
    """
    return ENCODERS[event.channel](event, secret=secret)
