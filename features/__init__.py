"""Feature store: one definition per feature, computed point-in-time in batch and incrementally online.

* ``specs`` - :class:`~features.specs.FeatureSpec` / :class:`~features.specs.FeatureSet`, loaded from YAML;
* ``windows`` - the event-time window semantics both engines share;
* ``facts`` - orders and labels turned into the facts features aggregate;
* ``aggregators`` - what each aggregation means over a window's values (the online side);
* ``online`` - :class:`~features.online.OnlineFeatures`: ``apply`` orders, ``lookup`` vectors as of a time;
* ``stores`` - online store backends (memory, SQLite, Redis) chosen by ``type``;
* ``batch`` - the point-in-time training frame, in SQL generated from the specs (DuckDB);
* ``shop`` - the default feature set of a multi-channel shop.

Nothing is imported here, so importing one module never pulls in DuckDB or Redis.
"""
