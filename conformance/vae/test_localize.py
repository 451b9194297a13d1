"""The divergence localizer (`conformance.localize`, `conformance.vae.localize`): on the clean port every
layer holds its tier; with an injected defect it names the layer where the error enters, and it writes the
table and the plot."""

from __future__ import annotations

import json

import numpy as np

from conformance import localize, record_series
from conformance.vae import localize as vae_localize


def test_generic_localizer_names_the_first_layer_below_its_tier(tmp_path) -> None:
    rng = np.random.default_rng(0)
    ref = {f"l{i}": rng.standard_normal((2, 3)) for i in range(4)}
    act = {k: v + (1e-3 if k in ("l2", "l3") else 1e-8) for k, v in ref.items()}
    act["extra"] = np.zeros(1)
    loc = localize.localize(ref, act, dtype="float32", required="perfect")
    assert loc.first_below is not None and loc.first_below.name == "l2"
    assert [r.tier for r in loc.rows[:2]] == ["perfect", "perfect"] and loc.unmatched_actual == ("extra",)
    paths = localize.write(loc, tmp_path)
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    assert "**first below**" in paths["md"].read_text()
    assert json.loads(paths["json"].read_text())["first_below"] == "l2"


def test_vae_localizer_finds_the_compress_time_reshape(tmp_path) -> None:
    clean = vae_localize.run("micro", size=8, frames=5)
    assert clean.first_below is None and len(clean.rows) > 50, clean.summary()
    broken = vae_localize.run("micro", size=8, frames=5, mutant="no-transpose")
    assert broken.first_below is not None
    assert broken.first_below.name == "encoder.down_blocks.0.downsamplers.0", broken.summary()
    assert all(r.passed for r in broken.rows if r.name.startswith("decoder."))  # same latent on both sides
    for label, loc in (("port", clean), ("mutant: compress-time reshape without transpose", broken)):
        record_series(
            "vae: error propagation through the micro VAE (encoder, then decoder on the same latent)",
            [r.index for r in loc.rows],
            [max(r.mae_norm, 1e-12) for r in loc.rows],
            label=label,
            xlabel="layer, execution order",
            ylabel="normalized MAE (abs, float32)",
        )


def test_vae_localizer_command_writes_the_table_and_the_plot(tmp_path) -> None:
    code = localize.main(["vae", "--config", "micro", "--size", "8", "--frames", "5", "--out", str(tmp_path)])
    assert code == 0
    for name in ("localize.md", "localize.csv", "localize.json", "localize.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert localize.main(["nope"]) == 2
