"""Framework-free contracts shared by the references and their JAX ports (NumPy and the standard library only).

One package per subsystem (configs, constants, input validation and its errors, frame/tile plans, manifest
schemas) and `contracts.common` (atomic writes, checksums, the state-dict check). Imports run one way:
``contracts`` <- ``reference``, ``contracts`` <- ``implementations``, and the harness (``conformance``) above
both; nothing here imports PyTorch, SciPy, JAX or either side's computation.
"""
