"""Bad input to the VAE's public entry points: clear, specific errors, raised outside jitted code.

Channel counts not divisible by the group count, unsupported frame counts, wrong layouts and dtypes, and
checkpoints with missing, extra or mis-shaped tensors (listed by name), non-safetensors or corrupt files.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import implementations.vae as impl
import reference.vae as ref
from conformance.exactness import Exactness, assert_bitwise
from contracts.common import as_numpy
from contracts.vae.config import CogVideoXVAEConfig, VAEInputError, micro, tiny3
from implementations.vae.convert import CheckpointError, abstract_model, load_model, save_safetensors

MICRO = micro()


@pytest.fixture(scope="module")
def state_dict() -> dict[str, np.ndarray]:
    """The reference's weights, as the NumPy arrays the port reads (`contracts.common.as_numpy`)."""
    torch.manual_seed(0)
    return {k: as_numpy(v) for k, v in ref.AutoencoderKLCogVideoX(MICRO).state_dict().items()}


@pytest.fixture(scope="module")
def model(state_dict: dict[str, np.ndarray]) -> impl.AutoencoderKLCogVideoX:
    return load_model(impl.AutoencoderKLCogVideoX, (MICRO,), state_dict)


# -- groups ------------------------------------------------------------------------------------------


def test_config_channels_not_divisible_by_groups() -> None:
    with pytest.raises(VAEInputError, match=r"not divisible by norm_num_groups=8.*GroupNorm"):
        CogVideoXVAEConfig(
            block_out_channels=(32, 36),
            down_block_types=("a", "b"),
            up_block_types=("a", "b"),
            norm_num_groups=8,
        )


def test_layers_channels_not_divisible_by_groups() -> None:
    with pytest.raises(VAEInputError, match="num_channels=10 is not divisible by num_groups=4"):
        impl.GroupNorm(4, 10)
    with pytest.raises(VAEInputError, match="12 channels not divisible by groups=8"):
        abstract_model(impl.CogVideoXResnetBlock3D, 8, 12, groups=8)


def test_config_mismatched_block_lists() -> None:
    with pytest.raises(VAEInputError, match="same length"):
        CogVideoXVAEConfig(block_out_channels=(32, 64), norm_num_groups=8)


# -- frame counts, shapes, layouts, dtypes ------------------------------------------------------------------


@pytest.mark.parametrize("frames", [2, 4, 8])
def test_unsupported_frame_count(model: impl.AutoencoderKLCogVideoX, frames: int) -> None:
    with pytest.raises(VAEInputError, match=rf"{frames} frames; this VAE supports 1 \+ 2k frames"):
        model.encode(np.zeros((1, frames, 8, 8, 3), np.float32))


def test_unsupported_frame_count_ratio_4() -> None:
    cfg = tiny3()
    assert cfg.effective_temporal_ratio == 4 and cfg.supported_frames(9) and not cfg.supported_frames(7)
    torch_model = ref.AutoencoderKLCogVideoX(
        micro(
            temporal_compression_ratio=4,
            block_out_channels=(8, 8, 8),
            down_block_types=("a",) * 3,
            up_block_types=("a",) * 3,
        )
    )
    with pytest.raises(VAEInputError, match=r"7 frames; this VAE supports 1 \+ 4k frames"):
        torch_model.encode(torch.zeros(1, 3, 7, 8, 8))


def test_channel_first_input_to_the_channel_last_port(model: impl.AutoencoderKLCogVideoX) -> None:
    with pytest.raises(VAEInputError, match="channel-first input"):
        model.encode(np.zeros((1, 3, 9, 8, 8), np.float32))
    with pytest.raises(VAEInputError, match="channel-first input"):
        model.decode(np.zeros((1, 4, 3, 6, 6), np.float32))


def test_channel_last_input_to_the_channel_first_reference() -> None:
    torch_model = ref.AutoencoderKLCogVideoX(MICRO)
    with pytest.raises(VAEInputError, match="channel-last input"):
        torch_model.encode(torch.zeros(1, 9, 8, 8, 3))


def test_wrong_rank(model: impl.AutoencoderKLCogVideoX) -> None:
    with pytest.raises(VAEInputError, match=r"5-D \(B, T, H, W, C\)"):
        model.encode(np.zeros((9, 8, 8, 3), np.float32))
    conv = abstract_model(impl.CogVideoXCausalConv3d, 3, 4, 3)
    with pytest.raises(VAEInputError, match="5-D"):
        conv(np.zeros((9, 8, 8, 3), np.float32))


def test_spatial_size_not_a_multiple_of_the_ratio(model: impl.AutoencoderKLCogVideoX) -> None:
    with pytest.raises(VAEInputError, match="multiples of the spatial ratio 2"):
        model.encode(np.zeros((1, 9, 7, 8, 3), np.float32))


def test_integer_input(model: impl.AutoencoderKLCogVideoX) -> None:
    with pytest.raises(VAEInputError, match="floating-point"):
        model.encode(np.zeros((1, 9, 8, 8, 3), np.int32))


# -- checkpoints ---------------------------------------------------------------------------------------------


def test_missing_tensor_is_named(state_dict: dict) -> None:
    sd = dict(state_dict)
    del sd["decoder.norm_out.conv_b.conv.bias"]
    with pytest.raises(
        CheckpointError, match=r"missing tensors \(1\): decoder.norm_out.conv_b.conv.bias"
    ) as err:
        load_model(impl.AutoencoderKLCogVideoX, (MICRO,), sd)
    assert err.value.missing == ["decoder.norm_out.conv_b.conv.bias"]


def test_unexpected_tensor_is_named(state_dict: dict) -> None:
    sd = dict(state_dict)
    sd["encoder.quant_conv.weight"] = np.zeros((8, 8, 1, 1, 1), np.float32)
    with pytest.raises(CheckpointError, match=r"unexpected tensors \(1\): encoder.quant_conv.weight"):
        load_model(impl.AutoencoderKLCogVideoX, (MICRO,), sd)


def test_misshaped_tensor_is_named(state_dict: dict) -> None:
    sd = dict(state_dict)
    sd["encoder.conv_in.conv.weight"] = np.zeros((8, 3, 3, 3, 1), np.float32)
    with pytest.raises(
        CheckpointError,
        match=r"mis-shaped tensors \(1\): encoder.conv_in.conv.weight: checkpoint "
        r"\(8, 3, 3, 3, 1\) float32, model \(8, 3, 3, 3, 3\)",
    ):
        load_model(impl.AutoencoderKLCogVideoX, (MICRO,), sd)


def test_all_problems_are_listed_together(state_dict: dict) -> None:
    sd = dict(state_dict)
    del sd["encoder.conv_out.conv.bias"]
    sd["extra.weight"] = np.zeros(1, np.float32)
    sd["decoder.conv_in.conv.bias"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError) as err:
        load_model(impl.AutoencoderKLCogVideoX, (MICRO,), sd)
    e = err.value
    assert e.missing == ["encoder.conv_out.conv.bias"] and e.unexpected == ["extra.weight"]
    assert [m.split(":")[0] for m in e.mismatched] == ["decoder.conv_in.conv.bias"]


def test_torch_tensors_are_refused_with_the_conversion_named(state_dict: dict) -> None:
    """The port never imports PyTorch: a torch state dict is converted by the caller (as_numpy)."""
    sd = {k: torch.from_numpy(v) for k, v in state_dict.items()}
    with pytest.raises(CheckpointError, match=r"torch\.Tensor.*contracts\.common\.as_numpy"):
        load_model(impl.AutoencoderKLCogVideoX, (MICRO,), sd)


def test_pickle_checkpoints_are_refused(tmp_path) -> None:
    path = tmp_path / "vae.pt"
    path.write_bytes(b"not read")
    with pytest.raises(CheckpointError, match=r"only \.safetensors"):
        load_model(impl.AutoencoderKLCogVideoX, (MICRO,), path)


def test_corrupt_and_missing_safetensors(tmp_path, state_dict: dict) -> None:
    good = tmp_path / "vae.safetensors"
    save_safetensors(state_dict, good)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(impl.AutoencoderKLCogVideoX, (MICRO,), bad)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(impl.AutoencoderKLCogVideoX, (MICRO,), tmp_path / "absent.safetensors")


def test_safetensors_checkpoint_loads(tmp_path, state_dict: dict) -> None:
    path = tmp_path / "vae.safetensors"
    save_safetensors(state_dict, path)
    m = load_model(impl.AutoencoderKLCogVideoX, (MICRO,), path)
    back = impl.to_torch_state_dict(m)
    assert_bitwise(
        state_dict,
        {k: back[k] for k in state_dict},
        why=f"{Exactness.ORDER_INDEPENDENT}: a copy",
    )


def test_a_convolution_over_fewer_frames_than_its_kernel_spans_is_refused() -> None:
    from implementations.vae.layers import conv3d_by_time_taps

    x = np.zeros((1, 2, 4, 4, 3), np.float32)
    k = np.zeros((3, 3, 3, 3, 5), np.float32)
    with pytest.raises(VAEInputError, match="2 frames are fewer than the kernel's time span 3"):
        conv3d_by_time_taps(x, k, None)


def test_apply_conv3d_refuses_padding_it_does_not_compute() -> None:
    from flax import nnx

    from implementations.vae.layers import apply_conv3d

    conv = nnx.Conv(3, 5, (3, 3, 3), padding="SAME", rngs=nnx.Rngs(0))
    with pytest.raises(VAEInputError, match="needs padding 'VALID'"):
        apply_conv3d(conv, np.zeros((1, 3, 4, 4, 3), np.float32))


@pytest.mark.parametrize("channels", [3, 4])
def test_the_time_tap_convolution_is_the_3d_convolution(channels: int) -> None:
    """Both forms (3 input channels: the taps stacked into the channels of one 2-D convolution; 4: the sum of
    one 2-D convolution per tap) against XLA's own 3-D convolution, with time and spatial strides and a time
    dilation (within float32 rounding of a different summation order)."""
    import jax

    from conformance.exactness import assert_within
    from implementations.vae import layers
    from implementations.vae.layers import conv3d_by_time_taps

    assert (channels * 3 <= layers.STACKED_TAPS_MAX_CHANNELS) == (channels == 3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 6, 5, channels)).astype(np.float32)
    k = rng.standard_normal((3, 3, 3, channels, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    for strides, dil in (((1, 1, 1), 1), ((2, 1, 1), 1), ((1, 1, 1), 2), ((1, 2, 2), 1), ((2, 2, 1), 2)):
        want = (
            jax.lax.conv_general_dilated(
                x,
                k,
                strides,
                "VALID",
                rhs_dilation=(dil, 1, 1),
                dimension_numbers=("NTHWC", "THWIO", "NTHWC"),
                precision="highest",
            )
            + b
        )
        got = conv3d_by_time_taps(x, k, b, strides, dil, "highest")
        assert got.shape == want.shape
        assert_within(np.asarray(want, np.float64), np.asarray(got), "perfect", dtype="float32")


def _conv3d_float64(x: np.ndarray, k: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The VALID 3x3x3 convolution as a float64 sum over its 27 taps (channel-last)."""
    _, t, h, w, _ = x.shape
    out = np.zeros((x.shape[0], t - 2, h - 2, w - 2, k.shape[-1])) + b.astype(np.float64)
    for a in range(3):
        for i in range(3):
            for j in range(3):
                out += x[:, a : a + t - 2, i : i + h - 2, j : j + w - 2].astype(np.float64) @ k[
                    a, i, j
                ].astype(np.float64)
    return out


@pytest.mark.parametrize("shape", [(1, 5, 6, 8, 3), (2, 3, 7, 5, 4), (1, 4, 3, 3, 6)])
def test_the_winograd_convolution_is_the_3d_convolution(shape: tuple[int, ...]) -> None:
    """`conv3d_winograd` with the `winograd_kernel` of a 3x3x3 kernel against the float64 convolution, on even
    and odd output sizes (odd ones run padded tiles, cropped after) and a single output pixel; a
    `WinogradKernel` in `conv3d_by_time_taps` runs it at stride 1, and runs a strided convolution from its
    stacked taps. A wrong sign in the tile transform is the negative control."""
    import jax.numpy as jnp

    from conformance.exactness import assert_within
    from implementations.vae import layers

    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(np.float32)
    k = rng.standard_normal((3, 3, 3, shape[-1], 5)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    u = layers.winograd_kernel(k)
    assert u.shape == (16, 3 * shape[-1], 5) and u.dtype == np.float32
    want = _conv3d_float64(x, k, b)
    got = np.asarray(layers.conv3d_winograd(jnp.asarray(x), jnp.asarray(u), jnp.asarray(b), "highest"))
    assert got.shape == want.shape
    assert_within(want, got, "perfect", dtype="float32")
    wk = layers.WinogradKernel(tuple(jnp.asarray(t) for t in k), jnp.asarray(u))
    assert wk.shape == k.shape and wk.dtype == np.float32 and wk.ndim == 5 and wk[...] is wk
    assert_within(want, np.asarray(layers.conv3d_by_time_taps(x, wk, b, precision="highest")), "perfect")
    strided = layers.conv3d_by_time_taps(x, wk, b, (1, 2, 2), 1, "highest")
    direct = layers.conv3d_by_time_taps(x, k, b, (1, 2, 2), 1, "highest")
    assert_bitwise(np.asarray(direct), np.asarray(strided), why=f"{Exactness.SAME_PROGRAM}: the stacked taps")

    right = layers.WINOGRAD_BT
    try:
        # one row of B^T with its sign flipped
        layers.WINOGRAD_BT = right * np.array([[1.0], [1.0], [-1.0], [1.0]])
        wrong = np.asarray(layers.conv3d_winograd(jnp.asarray(x), jnp.asarray(u), jnp.asarray(b), "highest"))
    finally:
        layers.WINOGRAD_BT = right
    assert np.abs(wrong - want).max() > 1e-2 * np.abs(want).max()


@pytest.mark.parametrize(
    ("pixel", "spreads"), [((0, 0), True), ((1, 1), False), ((2, 3), True), ((4, 5), True)]
)
def test_a_non_finite_input_reaches_the_winograd_outputs_the_convolution_takes_it_into(
    pixel: tuple[int, int], spreads: bool
) -> None:
    """An infinite input pixel makes exactly the outputs whose 3x3x3 window holds it non-finite, as the direct
    convolution does: each position of a 4x4 tile enters only the transformed values whose coefficient is not
    0 (a tile position times a 0 coefficient would be NaN for an infinite input, and would spread it to the
    tile's other outputs: the negative control, which spreads it wherever the pixel is not at a position whose
    window already covers all of its tiles' outputs, as (1, 1) does). Pixels at a tile's corner, inside it, on
    two tiles' shared rows, and on the odd edge."""
    import jax.numpy as jnp

    from implementations.vae import layers

    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 4, 7, 8, 3)).astype(np.float32)
    x[0, 1, pixel[0], pixel[1], 1] = np.inf
    k = rng.standard_normal((3, 3, 3, 3, 4)).astype(np.float32)
    b = np.zeros(4, np.float32)
    u = jnp.asarray(layers.winograd_kernel(k))
    want = np.isfinite(_conv3d_float64(x, k, b))
    assert 0 < (~want).sum() < want.size
    got = np.asarray(layers.conv3d_winograd(jnp.asarray(x), u, jnp.asarray(b), "highest"))
    why = (
        f"{Exactness.ORDER_INDEPENDENT}: which outputs are finite, with one infinite input and no zero weight, "
        "does not depend on the order of the sums (no sum of infinities and finite values is finite)"
    )
    assert_bitwise(want, np.isfinite(got), why=why)

    tiles = layers._winograd_input_tiles
    coef = layers._winograd_tile_coefficients()

    def by_zero_products(frames: jnp.ndarray, th: int, tw: int) -> jnp.ndarray:
        views = [frames[None, :, r : r + 2 * th : 2, s : s + 2 * tw : 2] for r in range(4) for s in range(4)]
        lead = (16,) + (1,) * frames.ndim
        return sum(v * coef[:, i // 4, i % 4].reshape(lead).astype(np.float32) for i, v in enumerate(views))

    try:
        layers._winograd_input_tiles = by_zero_products
        spread = np.asarray(layers.conv3d_winograd(jnp.asarray(x), u, jnp.asarray(b), "highest"))
    finally:
        layers._winograd_input_tiles = tiles
    assert ((~np.isfinite(spread)).sum() > (~want).sum()) == spreads


def test_winograd_refuses_kernels_and_inputs_it_does_not_compute() -> None:
    import jax.numpy as jnp

    from implementations.vae import layers

    with pytest.raises(VAEInputError, match=r"needs a \(3, 3, 3, I, O\) kernel; got shape \(1, 3, 3, 4, 5\)"):
        layers.winograd_kernel(np.zeros((1, 3, 3, 4, 5), np.float32))
    u = jnp.zeros((16, 12, 5), jnp.float32)
    with pytest.raises(VAEInputError, match=r"for 3 channels is \(16, 9, O\); got \(16, 12, 5\)"):
        layers.conv3d_winograd(jnp.zeros((1, 3, 4, 4, 3)), u, None)
    with pytest.raises(VAEInputError, match="smaller than the 3x3x3 kernel"):
        layers.conv3d_winograd(jnp.zeros((1, 3, 2, 4, 4)), u, None)
    with pytest.raises(TypeError, match="read whole"):
        layers.WinogradKernel((u, u, u), u)[0]
