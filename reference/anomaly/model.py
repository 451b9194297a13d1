"""The iTAC-AD style anomaly detector in PyTorch: the reference (ground truth) of `implementations.anomaly`.

- ``ITREncoder``: each variate's length-L series is one token. (B,L,D) -> (B*D,L) -> LayerNorm(L) ->
  Linear(L -> d_model) -> tokens (B,D,d_model) -> ``nn.TransformerEncoder`` (pre-norm, exact GELU,
  batch_first, no positional encoding) -> LayerNorm(d_model) -> Linear(d_model -> L) -> LayerNorm(L) ->
  (B,L,D). Returns ``(h_time, h_tokens)``. Variates are tokens of one sample only: no sample mixing (D5/D6).
- ``dec1``: ``TranADStyleDecoder`` (Linear(D -> dm), blocks of a one-layer pre-norm encoder over time, a
  LayerNorm and a residual GELU MLP, Linear(dm -> D)) or ``MLPDecoder`` (Linear-GELU-Linear, D -> D).
- ``O1 = dec1(enc(W)) + W``; ``score = mean |O1 - W|`` over (L, D): an L1 mean, shape (B,).

Everything is built eagerly from the config (no lazy build), so a fresh model has every parameter a checkpoint
holds. ``ExportWrapper`` is the slim module that the exporters trace: encoder + dec1, returning ``(O1, score)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from contracts.anomaly.config import AnomalyConfig
from contracts.anomaly.inputs import InputError, validate_window

__all__ = [
    "AnomalyDetector",
    "DecoderBlock",
    "ExportWrapper",
    "ITREncoder",
    "InputError",
    "MLPDecoder",
    "ResidualMLP",
    "TranADStyleDecoder",
    "build",
    "detect",
    "make_decoder",
    "validate_window",
]


def _encoder_layer(
    width: int, heads: int, ffn: int, dropout: float, eps: float
) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(
        d_model=width,
        nhead=heads,
        dim_feedforward=ffn,
        dropout=dropout,
        activation="gelu",  # exact (erf) GELU
        layer_norm_eps=eps,
        batch_first=True,
        norm_first=True,
    )


class ITREncoder(nn.Module):
    """Inverted tokens: one token per variate, attention across the variates of one sample."""

    def __init__(self, cfg: AnomalyConfig) -> None:
        super().__init__()
        self.L, self.D = cfg.L, cfg.D
        self.in_norm = nn.LayerNorm(cfg.L, eps=cfg.ln_eps)
        self.embed = nn.Linear(cfg.L, cfg.d_model)
        self.encoder = nn.TransformerEncoder(
            _encoder_layer(cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout, cfg.ln_eps),
            num_layers=cfg.e_layers,
            enable_nested_tensor=False,
        )
        self.out_norm = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.project = nn.Linear(cfg.d_model, cfg.L)
        self.time_norm = nn.LayerNorm(cfg.L, eps=cfg.ln_eps)

    def forward(self, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B = W.shape[0]
        x = W.transpose(1, 2).reshape(B * self.D, self.L)  # (B*D, L): one series per row
        tokens = self.embed(self.in_norm(x)).reshape(B, self.D, -1)  # (B, D, d_model)
        h_tokens = self.encoder(tokens)
        y = self.time_norm(self.project(self.out_norm(h_tokens)))  # (B, D, L)
        h_time = y.transpose(1, 2)  # (B, L, D)
        return h_time, h_tokens


class ResidualMLP(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(nn.functional.gelu(self.fc1(x)))


class DecoderBlock(nn.Module):
    def __init__(self, cfg: AnomalyConfig) -> None:
        super().__init__()
        dm = cfg.dec_width
        self.attn = _encoder_layer(dm, cfg.dec_heads, 4 * dm, cfg.dropout, cfg.ln_eps)
        self.norm = nn.LayerNorm(dm, eps=cfg.ln_eps)
        self.mlp = ResidualMLP(dm)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.norm(self.attn(h)))


class TranADStyleDecoder(nn.Module):
    """Linear(D -> dm); blocks of (pre-norm encoder layer over time, LayerNorm, residual GELU MLP); Linear(dm -> D)."""

    def __init__(self, cfg: AnomalyConfig) -> None:
        super().__init__()
        self.inp = nn.Linear(cfg.D, cfg.dec_width)
        self.blocks = nn.ModuleList([DecoderBlock(cfg) for _ in range(cfg.dec_blocks)])
        self.out = nn.Linear(cfg.dec_width, cfg.D)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = self.inp(h)
        for block in self.blocks:
            x = block(x)
        return self.out(x)


class MLPDecoder(nn.Module):
    def __init__(self, cfg: AnomalyConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(cfg.D, cfg.D)
        self.fc2 = nn.Linear(cfg.D, cfg.D)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc2(nn.functional.gelu(self.fc1(h)))


def make_decoder(cfg: AnomalyConfig) -> nn.Module:
    return TranADStyleDecoder(cfg) if cfg.decoder == "tranad" else MLPDecoder(cfg)


class AnomalyDetector(nn.Module):
    """The detector: ``encoder`` + ``dec1``. ``forward(W)`` returns ``(O1, score)``."""

    def __init__(self, cfg: AnomalyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ITREncoder(cfg)
        self.dec1 = make_decoder(cfg)

    def forward(self, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h_time, _ = self.encoder(W)
        O1 = self.dec1(h_time) + W
        score = (O1 - W).abs().mean(dim=(1, 2))
        return O1, score


class ExportWrapper(nn.Module):
    """The slim module the exporters see: encoder + dec1 of a detector, plain tensors ``(O1, score)`` out.

    It reuses the detector's submodules (not copies), so the exported weights are the trained ones, and it
    takes ``encoder(W)[0]`` from the encoder's *tuple* (the original indexed sample 0 of a tensor: D5).
    """

    def __init__(self, model: AnomalyDetector) -> None:
        super().__init__()
        self.encoder = model.encoder
        self.dec1 = model.dec1

    def forward(self, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h_time = self.encoder(W)[0]
        O1 = self.dec1(h_time) + W
        score = (O1 - W).abs().mean(dim=(1, 2))
        return O1, score


def build(cfg: AnomalyConfig, seed: int = 0) -> AnomalyDetector:
    """A freshly initialised detector (deterministic for a seed), in eval mode."""
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = AnomalyDetector(cfg)
    finally:
        torch.random.set_rng_state(gen_state)
    return model.eval()


def detect(model: AnomalyDetector, W: object) -> tuple[torch.Tensor, torch.Tensor]:
    """``(O1, score)`` of windows ``W`` (B, L, D) float32, in eval mode without gradients.

    The input is validated first (shape against the model's L and D, dtype, finiteness).
    """
    cfg = model.cfg
    validate_window(W, cfg.L, cfg.D, what="the reference detector")
    x = W if isinstance(W, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(W))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    finally:
        model.train(was_training)
