"""npport: a NumPy reference and its JAX port (an example project for the parity suite)."""
