"""The tiers the VAE port promised, pinned: every layer perfect, blocks and tiny models at least excellent, and
bfloat16 rows at least attention (bfloat16 bounds are 65536x looser, so this is a real bound, checked for
vacuity by tests/test_vacuity.py); frame-batched, tiled and sharded paths (like for like) perfect. The
``.bf16_rounding`` cases run the port in bfloat16 but are judged with float32 bounds, one bfloat16 rounding from
the reference: at least good (a bfloat16 ulp on unit-scale outputs is within good's max bound only)."""

from __future__ import annotations

from conformance.tiers import at_least, default_table

LAYERS = ("causal_conv3d", "group_norm", "spatial_norm3d", "downsample3d", "upsample3d", "resnet_block3d")
LIKE_FOR_LIKE = ("frame_batched", "tiled", "sharded")


def _floor(name: str, dtype: str) -> str:
    if dtype == "bfloat16":
        return "attention"
    if name.endswith(".bf16_rounding"):
        return "good"
    if name.rsplit(".", maxsplit=1)[-1] in LIKE_FOR_LIKE:
        return "perfect"
    if name.split(".")[1] in LAYERS and not name.endswith(".offset"):
        return "perfect"
    return "excellent"


def test_every_vae_row_meets_its_floor() -> None:
    table = default_table()
    rows = [(name, r) for name, spec in table.cases.items() if name.startswith("vae.") for r in spec.required]
    assert len(rows) > 25
    for name, r in rows:
        floor = _floor(name, r.dtype)
        assert at_least(r.tier, floor), (
            f"{name} {r.backend}/{r.device}/{r.dtype} requires {r.tier}, floor {floor}"
        )
