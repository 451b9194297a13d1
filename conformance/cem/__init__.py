"""Conformance tests of the CEM subsystem: `reference.cem` (PyTorch) against `implementations.cem` (JAX)
and its `jax.export` AOT pipeline."""
