"""Atomic file writes for the anomaly subsystem's checkpoints, manifests and artifacts (reference side)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_replace(tmp: Path, path: Path) -> None:
    """Move a file written elsewhere (e.g. by a library's own serializer) into place atomically."""
    os.replace(tmp, path)
