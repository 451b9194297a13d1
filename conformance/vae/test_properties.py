"""Properties of the VAE port beyond element parity: exact weight round trips, shape contracts, causality,
cache shapes and chunking, diffusers' frame batches and tile plan, torch's nearest indices, and compile
counts that do not grow with the number of frame batches or tiles."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from flax import nnx

import implementations.vae as impl
import reference.vae as ref
from conformance import compiles, precision
from conformance.exactness import Exactness, assert_bitwise
from conformance.vae.cases import MICRO, MICRO_TILED
from conformance.vae.twins import random_state_dict
from contracts.common import as_numpy
from contracts.vae.config import CogVideoXVAEConfig, tiny2, tiny3
from contracts.vae.plans import frame_batches, tile_plan
from implementations.vae.convert import abstract_model, load_model, to_torch_state_dict
from implementations.vae.layers import nearest_indices
from implementations.vae.model import apply_bound, apply_module, bind, bind_taps, split_params


@pytest.fixture(autouse=True)
def _policy() -> None:
    precision.apply()


def _np(state_dict: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """A torch state dict as the NumPy arrays the port's converter reads."""
    return {k: as_numpy(v) for k, v in state_dict.items()}


# -- weight conversion -----------------------------------------------------------------------------------------


def test_round_trip_is_exact_and_every_tensor_is_used() -> None:
    torch.manual_seed(0)
    sd = ref.AutoencoderKLCogVideoX(tiny2()).state_dict()
    model = load_model(impl.AutoencoderKLCogVideoX, (tiny2(),), _np(sd))
    back = to_torch_state_dict(model)
    assert sorted(back) == sorted(sd)
    for k in sd:
        assert back[k].dtype == np.float32, k
    copy = f"{Exactness.ORDER_INDEPENDENT}: weight conversion copies and transposes"
    assert_bitwise({k: v.numpy() for k, v in sd.items()}, {k: back[k] for k in sd}, why=copy)
    # and NNX -> torch -> NNX
    again = to_torch_state_dict(load_model(impl.AutoencoderKLCogVideoX, (tiny2(),), back))
    assert_bitwise(back, {k: again[k] for k in back}, why=copy)


def test_state_dict_keys_are_diffusers_keys() -> None:
    keys = set(ref.AutoencoderKLCogVideoX(CogVideoXVAEConfig()).state_dict())
    for k in (
        "encoder.conv_in.conv.weight",
        "encoder.down_blocks.0.resnets.0.norm1.weight",
        "encoder.down_blocks.0.downsamplers.0.conv.weight",
        "encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
        "decoder.mid_block.resnets.0.norm1.norm_layer.weight",
        "decoder.mid_block.resnets.0.norm1.conv_y.conv.weight",
        "decoder.up_blocks.0.upsamplers.0.conv.weight",
        "decoder.norm_out.conv_b.conv.bias",
        "decoder.conv_out.conv.weight",
    ):
        assert k in keys, k
    assert not any("temb_proj" in k for k in keys)  # the VAE passes temb_channels=0
    from implementations.vae.convert import param_paths

    nnx_keys = set(param_paths(abstract_model(impl.AutoencoderKLCogVideoX, CogVideoXVAEConfig())))
    assert nnx_keys == keys  # the default (2B) layout converts without renaming


def test_linear_and_conv2d_transposes() -> None:
    ctor_args = (8, 16)
    block = ref.CogVideoXResnetBlock3D(*ctor_args, temb_channels=12, groups=4).double()
    sd = block.state_dict()
    assert sd["temb_proj.weight"].shape == (16, 12)
    m = load_model(impl.CogVideoXResnetBlock3D, ctor_args, _np(sd), temb_channels=12, groups=4)
    copy = f"{Exactness.ORDER_INDEPENDENT}: a transposed copy"
    assert_bitwise(
        sd["temb_proj.weight"].numpy().T.astype(np.float32), np.asarray(m.temb_proj.kernel[...]), why=copy
    )
    down = ref.CogVideoXDownsample3D(8, 4)
    md = load_model(impl.CogVideoXDownsample3D, (8, 4), _np(down.state_dict()))
    assert_bitwise(
        down.state_dict()["conv.weight"].numpy().transpose(2, 3, 1, 0),
        np.asarray(md.conv.kernel[...]),
        why=copy,
    )


# -- shapes ------------------------------------------------------------------------------------------------------


def _shape(cls, cfg, x_shape):
    model = abstract_model(cls, cfg)
    graphdef, state = nnx.split(model)
    params = nnx.to_pure_dict(state)
    out = jax.eval_shape(
        lambda p, x: apply_module(graphdef, p, x)[0], params, jax.ShapeDtypeStruct(x_shape, jnp.float32)
    )
    return out.shape


@pytest.mark.parametrize(("cfg", "latent"), [(tiny2(), (1, 5, 16, 16, 8)), (tiny3(), (1, 3, 8, 8, 8))])
def test_shape_contract(cfg: CogVideoXVAEConfig, latent: tuple[int, ...]) -> None:
    assert _shape(impl.CogVideoXEncoder3D, cfg, (1, 9, 32, 32, 3)) == latent
    assert _shape(impl.CogVideoXDecoder3D, cfg, (*latent[:-1], 4)) == (1, 9, 32, 32, 3)
    assert (
        cfg.latent_frames(9) == latent[1] and cfg.latent_frames(49) == 1 + 48 // cfg.effective_temporal_ratio
    )


def test_tiny2_ratio_disagrees_with_the_block_count() -> None:
    """With two blocks only block 0 can compress time, whatever the ratio says."""
    assert tiny2(temporal_compression_ratio=4).effective_temporal_ratio == 2
    assert CogVideoXVAEConfig().effective_temporal_ratio == 4 and CogVideoXVAEConfig().supported_frames(49)


# -- causality and caches ----------------------------------------------------------------------------------------


def test_causal_conv_ignores_later_frames_and_caches_two_frames() -> None:
    conv_t = ref.CogVideoXCausalConv3d(4, 6, 3, pad_mode="first").double()
    conv = load_model(impl.CogVideoXCausalConv3d, (4, 6, 3), _np(conv_t.state_dict()), pad_mode="first")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 6, 6, 4)).astype(np.float32)
    y = x.copy()
    y[:, 4:] += 5.0
    ox, cache = conv(jnp.asarray(x))
    oy, _ = conv(jnp.asarray(y))
    assert_bitwise(
        np.asarray(ox[:, :4]),
        np.asarray(oy[:, :4]),
        why=f"{Exactness.SAME_PROGRAM}: one executable; frames 0-3 of the output read only unchanged inputs",
    )
    assert not np.allclose(np.asarray(ox[:, 4:]), np.asarray(oy[:, 4:]))
    assert cache.shape == (2, 2, 6, 6, 4)
    _, tcache = conv_t(torch.from_numpy(np.moveaxis(x, -1, 1)).double())
    assert tuple(tcache.shape) == (2, 4, 2, 6, 6)  # (B, C_in, 2, H, W)
    one = load_model(
        impl.CogVideoXCausalConv3d, (4, 6, 1), _np(ref.CogVideoXCausalConv3d(4, 6, 1).state_dict())
    )
    assert one(jnp.asarray(x))[1] is None  # torch keeps the whole input: None here, or jit would retrace


def test_reference_chunked_equals_one_shot() -> None:
    torch.manual_seed(0)
    conv = ref.CogVideoXCausalConv3d(3, 5, 3, pad_mode="first").double()
    x = torch.randn(1, 3, 9, 5, 5, dtype=torch.float64)
    whole, _ = conv(x)
    cache, parts = None, []
    for a, b in ((0, 1), (1, 4), (4, 9)):
        out, cache = conv(x[:, :, a:b], conv_cache=cache)
        parts.append(out)
    torch.testing.assert_close(torch.cat(parts, dim=2), whole, rtol=0, atol=1e-12)


# -- frame batches, tiles, nearest -------------------------------------------------------------------------------


def test_frame_batches_absorb_the_remainder_first() -> None:
    assert frame_batches(49, 8)[:3] == [(0, 9), (9, 17), (17, 25)] and frame_batches(49, 8)[-1] == (
        41,
        49,
    )
    assert frame_batches(13, 2)[:2] == [(0, 3), (3, 5)] and len(frame_batches(13, 2)) == 6
    assert frame_batches(5, 8) == [(0, 5)]  # diffusers slices [0:13], which clamps to the 5 frames


def test_tile_plan_truncations_match_diffusers() -> None:
    cfg = CogVideoXVAEConfig()
    dec = tile_plan(cfg, decode=True)
    assert (dec["tile_h"], dec["tile_w"], dec["stride_h"], dec["stride_w"]) == (30, 45, 25, 36)
    assert (dec["blend_h"], dec["blend_w"], dec["crop_h"], dec["crop_w"]) == (40, 72, 200, 288)
    enc = tile_plan(cfg, decode=False)
    assert (
        enc["stride_h"],
        enc["stride_w"],
        enc["blend_h"],
        enc["blend_w"],
        enc["crop_h"],
        enc["crop_w"],
    ) == (200, 288, 5, 9, 25, 36)


@pytest.mark.parametrize("n_in", [1, 2, 3, 4, 5, 7, 9, 13])
def test_nearest_indices_are_torch_legacy_nearest(n_in: int) -> None:
    for n_out in range(1, 40):
        x = torch.arange(n_in, dtype=torch.float64)[None, None, :, None]
        want = F.interpolate(x, size=(n_out, 1))[0, 0, :, 0].numpy().astype(int)
        assert_bitwise(
            want,
            nearest_indices(n_in, n_out),
            why=f"{Exactness.ORDER_INDEPENDENT}: integer indices",
            err_msg=f"{n_in} -> {n_out}",
        )


# -- compile counts ---------------------------------------------------------------------------------------------


def _micro_model(cfg: CogVideoXVAEConfig, tiling: bool, seed: int = 3) -> impl.AutoencoderKLCogVideoX:
    ctor = ("AutoencoderKLCogVideoX", (cfg,), ())
    m = load_model(
        impl.AutoencoderKLCogVideoX, (cfg,), random_state_dict(ctor, seed, "float32"), dtype=np.float32
    )
    if tiling:
        m.enable_tiling()
    return m


def test_compiles_do_not_grow_with_frame_batches() -> None:
    m = _micro_model(MICRO, False)
    rng = np.random.default_rng(0)
    m.encode(rng.standard_normal((1, 17, 8, 8, 3)).astype(np.float32))  # batches of 9 and 8 frames
    with compiles.counting() as c:
        out = jax.block_until_ready(m.encode(rng.standard_normal((1, 41, 8, 8, 3)).astype(np.float32)))
    assert out.shape == (1, 21, 4, 4, 8) and c.compiles == 0, c


def test_models_of_one_configuration_share_a_compilation_and_see_weight_updates() -> None:
    """The graph is walked and hashed once per model (`bind`), but the weights are read on every call: a
    second model of the same configuration compiles nothing and gives its own result, and copying its
    weights into the first model in place makes the first give that result too."""
    first, second = _micro_model(MICRO, False), _micro_model(MICRO, False, seed=4)
    x = np.random.default_rng(0).standard_normal((1, 9, 8, 8, 3)).astype(np.float32)
    out_first = np.asarray(first.encode(x))
    with compiles.counting() as c:
        out_second = np.asarray(second.encode(x))
    assert c.compiles == 0, c
    assert np.abs(out_first - out_second).max() > 1e-3  # different weights, different moments
    nnx.update(first, nnx.state(second))
    assert_bitwise(
        out_second,
        np.asarray(first.encode(x)),
        why=f"{Exactness.SAME_PROGRAM}: one compiled encoder, the same weights and input",
    )


MOVED = f"{Exactness.ORDER_INDEPENDENT}: a time tap holds the kernel's stored values, moved, not computed"


def test_convolution_kernels_travel_as_time_taps_that_share_their_memory() -> None:
    """`bind_taps` hands each 3-D convolution kernel to the jitted chunk as its time taps: equal to the
    kernel's slices, in the kernel's own memory on the CPU (no copy), made once per kernel value and made
    again after a weight update; the chunk computes what it computes from the whole kernels."""
    m, other = _micro_model(MICRO, False), _micro_model(MICRO, False, seed=4)
    bound, leaves = bind_taps(m.decoder)
    _, whole = bind(m.decoder)
    split = [(taps, kernel) for taps, kernel in zip(leaves, whole, strict=True) if isinstance(taps, tuple)]
    assert len(split) == sum(k.ndim == 5 and k.shape[0] > 1 for k in whole) > 0
    for taps, kernel in split:
        assert len(taps) == kernel.shape[0]
        for a, tap in enumerate(taps):
            assert_bitwise(np.asarray(kernel[a]), np.asarray(tap), why=MOVED)
            if jax.default_backend() == "cpu" and (a * tap.nbytes) % 64 == 0:  # on XLA's alignment
                assert tap.unsafe_buffer_pointer() == kernel.unsafe_buffer_pointer() + a * tap.nbytes
    again = bind_taps(m.decoder)[1]
    assert all(new is old for new, old in zip(again, leaves, strict=True))  # no new taps per call

    z = np.random.default_rng(0).standard_normal((1, 2, 4, 4, MICRO.latent_channels)).astype(np.float32)
    by_taps = np.asarray(apply_bound(bound, leaves, z, None, None)[0])
    by_kernels = np.asarray(apply_bound(bound, whole, z, None, None)[0])
    # two compiled programs (the taps' form and the whole kernels'): compared within float32 rounding
    np.testing.assert_allclose(by_taps, by_kernels, rtol=1e-5, atol=1e-6 * float(np.abs(by_kernels).max()))
    reversed_taps = [tuple(reversed(t)) if isinstance(t, tuple) else t for t in leaves]  # negative control
    wrong = np.asarray(apply_bound(bound, reversed_taps, z, None, None)[0])
    assert np.abs(wrong - by_kernels).max() > 1e-3 * float(np.abs(by_kernels).max())

    nnx.update(m, nnx.state(other))  # new kernel values: new taps on the next call, with the new values
    updated = bind_taps(m.decoder)[1]
    _, whole_other = bind(other.decoder)
    for new, old, kernel in zip(updated, leaves, whole_other, strict=True):
        if isinstance(new, tuple):
            assert new is not old
            assert_bitwise(np.asarray(kernel), np.asarray(jnp.stack(new)), why=MOVED)


def test_winograd_kernels_are_made_once_per_value_and_threshold() -> None:
    """`bind_taps` with a Winograd threshold hands every float32 3x3x3 kernel at or above it to the jitted
    chunk as a `WinogradKernel` (its taps and `winograd_kernel` of its values), makes them once per kernel
    value and threshold, and makes new ones after a weight update or a new threshold; the chunk computes
    the whole kernels' convolutions within float32 rounding of the other algorithm, and a transform taken
    from another model's weights (the negative control) does not."""
    from implementations.vae.layers import WinogradKernel, winograd_kernel

    m, other = _micro_model(MICRO, False), _micro_model(MICRO, False, seed=4)
    _, whole = bind(m.decoder)
    bound, leaves = bind_taps(m.decoder, 1)
    eligible = [i for i, k in enumerate(whole) if k.ndim == 5 and k.shape[:3] == (3, 3, 3)]
    assert eligible and [i for i, leaf in enumerate(leaves) if isinstance(leaf, WinogradKernel)] == eligible
    for i in eligible:
        u = np.asarray(leaves[i].u)
        assert_bitwise(
            winograd_kernel(np.asarray(whole[i])), u, why=f"{Exactness.SAME_PROGRAM}: one NumPy einsum"
        )
    again = bind_taps(m.decoder, 1)[1]
    assert all(new is old for new, old in zip(again, leaves, strict=True))  # none made again per call
    direct = bind_taps(m.decoder, None)[1]  # another threshold: made again, as taps
    assert all(isinstance(direct[i], tuple) for i in eligible)

    z = np.random.default_rng(0).standard_normal((1, 2, 4, 4, MICRO.latent_channels)).astype(np.float32)
    by_kernels = np.asarray(apply_bound(bound, whole, z, None, None)[0])
    by_winograd = np.asarray(apply_bound(bound, bind_taps(m.decoder, 1)[1], z, None, None)[0])
    scale = float(np.abs(by_kernels).max())
    np.testing.assert_allclose(by_winograd, by_kernels, rtol=1e-4, atol=1e-5 * scale)
    _, others = bind(other.decoder)
    foreign = [
        WinogradKernel(leaf.taps, winograd_kernel(np.asarray(others[i]))) if i in eligible else leaf
        for i, leaf in enumerate(leaves)
    ]
    wrong = np.asarray(apply_bound(bound, foreign, z, None, None)[0])
    assert np.abs(wrong - by_kernels).max() > 1e-3 * scale

    nnx.update(m, nnx.state(other))  # new kernel values: new transforms on the next call
    updated = bind_taps(m.decoder, 1)[1]
    for i in eligible:
        assert updated[i] is not leaves[i]
        assert_bitwise(
            winograd_kernel(np.asarray(others[i])),
            np.asarray(updated[i].u),
            why=f"{Exactness.SAME_PROGRAM}: one NumPy einsum",
        )


def test_jitted_chunks_compile_without_ynnpack_fusions() -> None:
    """The model's jitted functions carry `COMPILER_OPTIONS` at the top level: on XLA:CPU their convolutions
    run on XLA's own kernels, not in YNNPACK fusions (about 2x slower on the VAE's shapes). The same decoder
    compiled with XLA's defaults is the control: where this jaxlib makes YNNPACK fusions at all, it makes
    them there."""
    m = _micro_model(MICRO, False)
    graphdef, params = split_params(m.decoder)
    z = np.random.default_rng(0).standard_normal((1, 2, 4, 4, MICRO.latent_channels)).astype(np.float32)
    compiled = apply_module.lower(graphdef, params, z, None, None).compile().as_text()
    assert "conv" in compiled and "__ynn_fusion" not in compiled
    # inside a user's trace it is a plain nested jit (JAX rejects compile options there): same values, up to
    # the rounding of another compiled program
    top = np.asarray(apply_module(graphdef, params, z, None, None)[0])
    nested = np.asarray(jax.jit(lambda p, x: apply_module(graphdef, p, x, None, None)[0])(params, z))
    np.testing.assert_allclose(nested, top, rtol=1e-4, atol=1e-5 * float(np.abs(top).max()))
    if jax.default_backend() == "cpu":
        default = jax.jit(apply_module.__wrapped__, static_argnums=0).lower(graphdef, params, z, None, None)
        if "__ynn_fusion" not in default.compile().as_text():
            pytest.skip("this jaxlib makes no YNNPACK fusions for the decoder on this CPU: no control")


def test_compiles_do_not_grow_with_tiles() -> None:
    m = _micro_model(MICRO_TILED, True)
    rng = np.random.default_rng(0)
    m.decode(
        rng.standard_normal((1, 3, 16, 16, 4)).astype(np.float32)
    )  # 2 x 2 tiles: 12/6 rows, 12/7 columns
    with compiles.counting() as c:
        out = jax.block_until_ready(
            m.decode(rng.standard_normal((1, 3, 26, 25, 4)).astype(np.float32))
        )  # 3 x 3
    assert out.shape == (1, 5, 52, 54, 3) and c.compiles == 0, c


def test_tiled_equals_untiled_when_a_single_tile_covers_the_input() -> None:
    m = _micro_model(MICRO_TILED, True)
    z = np.random.default_rng(1).standard_normal((1, 3, 12, 12, 4)).astype(np.float32)
    tiled = np.asarray(m.decode(z))
    m.disable_tiling()
    assert_bitwise(
        np.asarray(m.decode(z)),
        tiled,
        why=f"{Exactness.SAME_PROGRAM}: one tile covers the input, so both run the same decode",
    )
