"""The default feature set of a multi-channel shop, defined in ``shop.yaml`` next to this module.

What the shop's reviewers look at, each as a feature a rule can cite by name: velocity
per device / IP / account, many accounts behind one device / WiFi / address / phone,
refund claims (damaged, not received, on parcels already delivered), units of one SKU
per account / address / device, the price against the SKU's usual price, account age,
first orders and their coupons, the delivery address against the account's history,
pick-up-station addresses, virtual-operator phones, the phone's home city against the
delivery district, whole-thousand amounts, night and weekend orders, an id card across
shops, and reviewer-confirmed frauds on the same identities.

``phone_delivery_km`` needs reference data: engines computing this set take an
``orderguard.enrich.Gazetteer``.
"""

from __future__ import annotations

from pathlib import Path

from features.settings import Settings
from features.specs import FeatureSet

#: The YAML definition, shipped next to this module (package data).
SHOP_FEATURES_PATH = Path(__file__).with_name("shop.yaml")


def default_shop_features() -> FeatureSet:
    """The bundled default feature set (see the module docstring)."""
    return FeatureSet.from_file(SHOP_FEATURES_PATH)


def feature_set_from(settings: Settings) -> FeatureSet:
    """The configured feature set (``features.specs_path``), or the bundled shop set."""
    path = settings.features.specs_path
    return FeatureSet.from_file(path) if path is not None else default_shop_features()
