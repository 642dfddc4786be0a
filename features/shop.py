"""The default feature set of a multi-channel shop, defined in ``shop.yaml`` next to this module.

Derived attributes not covered yet: pick-up-station keywords in the address detail,
virtual-operator phone segments, and the distance between the phone's home region and
the delivery province; they need new fact attributes, not new code paths.
"""

from __future__ import annotations

from pathlib import Path

from features.specs import FeatureSet

#: The YAML definition, shipped next to this module (package data).
SHOP_FEATURES_PATH = Path(__file__).with_name("shop.yaml")


def default_shop_features() -> FeatureSet:
    """The bundled default feature set (velocity, shared identities, refunds, SKU limits, labels)."""
    return FeatureSet.from_file(SHOP_FEATURES_PATH)
