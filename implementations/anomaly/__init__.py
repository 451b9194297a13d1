"""Implementation of the anomaly subsystem (the JAX twin of `reference.anomaly`): the JAX/Flax NNX port of the
detector (`model`) with weights converted from the reference's checkpoints (`convert`), its ``jax.export``
artifact (`export`), the runtimes that run every exported artifact (`runtimes`), and the command line
(``python -m implementations.anomaly export ...``).

Imports only `contracts` (configuration, input validation, the artifact table and manifest schema) besides
JAX, Flax, NumPy and safetensors; PyTorch and ONNX are imported lazily, inside the runtimes of their artifacts.
"""
