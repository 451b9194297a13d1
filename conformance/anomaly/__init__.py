"""Conformance tests of the anomaly subsystem: `reference.anomaly` against `implementations.anomaly`."""
