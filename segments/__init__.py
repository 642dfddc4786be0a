"""The trusted-customer pool: customers marketing may reward without feeding abusers.

``criteria`` (the bars, as YAML presets) -> ``inputs`` (what the order log knew at the
as-of, as DuckDB tables) -> ``pool`` (customers, links, metrics, the pool, in SQL) ->
``export`` (CSV / XLSX / Parquet); ``build`` ties them together for the CLI and the API.
"""
