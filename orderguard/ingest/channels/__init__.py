"""Channel adapters: one pure module per sales channel, and the registry of them.

``ADAPTERS`` maps every :class:`~orderguard.schema.Channel` to its adapter; adding a
channel means adding its module and one entry here, and the contract suite
(``tests/contracts``) then checks it like the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from orderguard.errors import UnknownChannelError
from orderguard.ingest.channels import douyin, jd, kuaishou, site, tmall, wechat
from orderguard.ingest.channels.base import ChannelAdapter
from orderguard.schema import Channel

__all__ = ["ADAPTERS", "get_adapter"]

#: Every channel's adapter, immutable.
ADAPTERS: Mapping[Channel, ChannelAdapter] = MappingProxyType({
    tmall.CHANNEL: tmall.ADAPTER,
    jd.CHANNEL: jd.ADAPTER,
    douyin.CHANNEL: douyin.ADAPTER,
    kuaishou.CHANNEL: kuaishou.ADAPTER,
    wechat.CHANNEL: wechat.ADAPTER,
    site.CHANNEL: site.ADAPTER,
})


def get_adapter(name: str) -> ChannelAdapter:
    """The adapter of a channel named by its value (``"tmall"``, ``"jd"`` …).

    Case and surrounding blanks are ignored, since names come from URLs and CLI flags.

    >>> get_adapter(" JD ").channel
    <Channel.JD: 'jd'>

    Raises:
        UnknownChannelError: no adapter for that name (``field="channel"``).
    """
    key = str(name).strip().lower()
    for channel, adapter in ADAPTERS.items():
        if channel.value == key:
            return adapter
    known = ", ".join(c.value for c in ADAPTERS)
    raise UnknownChannelError.must("channel", f"one of {known}", name)
