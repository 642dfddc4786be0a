"""Tests of the feature store: specs, windows, aggregators, facts, online and batch engines."""
