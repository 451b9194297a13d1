"""Conformance suite of the VAE subsystem: `reference.vae` (PyTorch CogVideoX VAE) vs `implementations.vae`."""
