"""Contract of the anomaly detector's configuration (standard library only): `AnomalyConfig`, the `SMALL` size,
`ConfigError`, and the JSON form stored beside every checkpoint; read by the PyTorch reference
(`reference.anomaly`) and its JAX port (`implementations.anomaly`) alike.

The model is built eagerly from (L, D): the window length and the number of variates fix every weight shape,
so a checkpoint can be checked tensor by tensor against its config before anything is loaded (the original
built its submodules lazily on the first forward, and a fresh model had no parameters to load into: D1).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from contracts.common import write_text

ENCODERS = ("itr",)
DECODERS = ("tranad", "mlp")
CONFIG_VERSION = 1


class ConfigError(ValueError):
    """A configuration that cannot describe a model (unknown kind, bad size, unknown or missing field)."""


@dataclasses.dataclass(frozen=True)
class AnomalyConfig:
    L: int = 16  # window length (static: every artifact is exported for one L)
    D: int = 8  # number of variates (static)
    d_model: int = 128
    n_heads: int = 8
    e_layers: int = 2
    d_ff: int = 512
    dropout: float = 0.1
    encoder: str = "itr"
    decoder: str = "tranad"  # dec1 kind: "tranad" (transformer-style over time) or "mlp"
    dec_heads: int = 4
    dec_blocks: int = 2
    ln_eps: float = 1e-5  # torch's LayerNorm default; the JAX port must use the same (Flax defaults to 1e-6)

    def __post_init__(self) -> None:
        for name in ("L", "D", "d_model", "n_heads", "e_layers", "d_ff", "dec_heads", "dec_blocks"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"config field {name!r} must be a positive integer; got {v!r}")
        if self.encoder not in ENCODERS:
            raise ConfigError(f"unknown encoder {self.encoder!r}; supported encoders: {', '.join(ENCODERS)}")
        if self.decoder not in DECODERS:
            raise ConfigError(f"unknown decoder {self.decoder!r}; supported decoders: {', '.join(DECODERS)}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.dec_width % self.dec_heads:
            raise ConfigError(
                f"decoder width {self.dec_width} is not divisible by dec_heads={self.dec_heads}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1); got {self.dropout!r}")
        if not self.ln_eps > 0:
            raise ConfigError(f"ln_eps must be positive; got {self.ln_eps!r}")

    @property
    def dec_width(self) -> int:
        """The transformer-style decoder's width: max(64, ceil(D / 8) * 8), as in the original."""
        return max(64, math.ceil(self.D / 8) * 8)

    def to_dict(self) -> dict[str, Any]:
        return {"version": CONFIG_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnomalyConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"a config must be a JSON object; got {type(data).__name__}")
        data = dict(data)
        version = data.pop("version", None)
        if version != CONFIG_VERSION:
            raise ConfigError(
                f"config version {version!r} is not supported (this code reads version {CONFIG_VERSION})"
            )
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> AnomalyConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"no config file at {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path} is not valid JSON: {e}") from None
        return cls.from_dict(data)


SMALL = AnomalyConfig(L=16, D=8, d_model=32, n_heads=4, e_layers=2, d_ff=64, dropout=0.0)
"""The size the conformance suite trains and exports (seconds on CPU); the architecture is the full one."""
