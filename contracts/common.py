"""What every subsystem's files need: atomic writes, SHA-256 checksums, and the state-dict check.

- Atomic writes: a reader never sees a half-written report, checkpoint, manifest or artifact.
- ``sha256_file`` and ``parameter_checksum``: the artifact hash a manifest records, and a hash of a model's
  tensors (names, dtypes, shapes, bytes) that is the same for PyTorch tensors and NumPy arrays.
- ``state_dict_mismatch``: the one comparison of a checkpoint's tensors with a model's, naming every missing,
  unexpected and mis-shaped tensor (nothing is ever dropped silently); each subsystem raises its own error type
  with the message it builds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

# -- atomic writes -----------------------------------------------------------------------------------------


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def save_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Atomically write a compressed ``.npz`` (a safe format: loaded with ``allow_pickle=False``)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return write_bytes(path, buf.getvalue())


def replace(tmp: str | Path, path: str | Path) -> Path:
    """Move a file that a library's own serializer wrote beside ``path`` into place atomically."""
    os.replace(tmp, path)
    return Path(path)


# -- checksums ---------------------------------------------------------------------------------------------


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def as_numpy(value: Any) -> np.ndarray:
    """A contiguous host array from a NumPy array or a PyTorch tensor (without importing PyTorch)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().contiguous().numpy()
    return np.ascontiguousarray(value)


def parameter_checksum(state: Mapping[str, Any]) -> str:
    """SHA-256 over the sorted tensor names, dtypes, shapes and bytes (PyTorch tensors or NumPy arrays)."""
    h = hashlib.sha256()
    for name in sorted(state):
        a = as_numpy(state[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# -- the state-dict check ----------------------------------------------------------------------------------

Spec = tuple[tuple[int, ...], str]  # (shape, dtype name)


def spec_of(value: Any) -> Spec:
    """(shape, dtype name) of an array or tensor (``torch.float32`` reads ``float32``)."""
    return tuple(int(n) for n in getattr(value, "shape", np.shape(value))), str(
        getattr(value, "dtype", np.asarray(value).dtype)
    ).replace("torch.", "")


@dataclasses.dataclass(frozen=True)
class StateDictMismatch:
    missing: list[str]
    unexpected: list[str]
    mismatched: list[str]  # "name: checkpoint (shape) dtype, model (shape) dtype"

    def message(self, where: str) -> str:
        lines = [f"{where} does not match the model:"]
        if self.missing:
            lines.append(f"  missing tensors ({len(self.missing)}): {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected tensors ({len(self.unexpected)}): {', '.join(self.unexpected)}")
        if self.mismatched:
            lines.append(f"  mis-shaped tensors ({len(self.mismatched)}): " + "; ".join(self.mismatched))
        return "\n".join(lines)


def state_dict_mismatch(
    expected: Mapping[str, Spec], found: Mapping[str, Any], *, check_dtype: bool = True
) -> StateDictMismatch | None:
    """Compare a checkpoint's tensors (``found``: arrays or tensors) with the model's ``(shape, dtype)`` per name;
    ``None`` when every tensor is there, expected, and of the right shape (and dtype)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = []
    for k in sorted(set(expected) & set(found)):
        shape, dtype = spec_of(found[k])
        want_shape, want_dtype = expected[k]
        if shape != tuple(want_shape) or (check_dtype and dtype != want_dtype):
            mismatched.append(f"{k}: checkpoint {shape} {dtype}, model {tuple(want_shape)} {want_dtype}")
    if missing or unexpected or mismatched:
        return StateDictMismatch(missing, unexpected, mismatched)
    return None
