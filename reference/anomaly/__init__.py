"""Reference (ground truth) of the anomaly subsystem: the iTAC-AD style detector in PyTorch (`model`), its
checkpoints (`checkpoint`: safetensors + JSON config, strict loading), the generated data set (`data`), a short
deterministic training run (`train`), its exports to TorchScript, torch.export and ONNX (`export`), and the
command line (``python -m reference.anomaly train|export``).

Its configuration, input validation and artifact table are the framework-free `contracts.anomaly`; the JAX
port lives in `implementations.anomaly` under the same names.
"""
