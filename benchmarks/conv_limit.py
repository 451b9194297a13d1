"""A minimal reproducer of where XLA:CPU's convolutions stand against PyTorch's (oneDNN) on the VAE's shapes.

    python -m benchmarks.conv_limit [--rounds 5]

One causal 3x3x3 convolution (VALID padding, float32, channel-last for JAX, channel-first for PyTorch) per
shape of the CogVideoX decoder and encoder, computed six ways in JAX, each jitted once and checked against
the first:

- ``conv3d``: `jax.lax.conv_general_dilated` in 3-D;
- ``taps2d``: the port's form (`implementations.vae.layers.conv3d_by_time_taps`): a sum over the 3 time taps
  of 2-D convolutions with frames folded into the batch, the kernel passed as its time taps as the port's
  frame batches pass it (`implementations.vae.model.bind_taps`: no copy of the kernel per call);
- ``stack2d``: the time taps stacked into the input channels, one 2-D convolution;
- ``im2col``: the 27 shifted views concatenated, one matmul;
- ``taps2d-ynn``: the port's form compiled with XLA's default options, where XLA:CPU puts the convolutions
  in YNNPACK fusions (the four forms above are compiled as the port compiles its model, with
  `implementations.vae.model.COMPILER_OPTIONS`: no YNNPACK fusions);

against ``torch.nn.functional.conv3d`` at its default thread count, all interleaved in one measurement
(`benchmarks.timer`), with the float32 matmul peak of this machine measured in the same run. The table shows
GFLOP/s: the best JAX form against PyTorch is the limit of XLA:CPU's direct convolution kernels on that shape.

A sixth form, ``winograd``, is a different algorithm for the same convolution: Winograd's F(2x2, 3x3) over the
time taps stacked into the channels (`implementations.vae.layers.conv3d_winograd`, the port's form for
kernels of at least `implementations.vae.layers.WINOGRAD_MIN_CHANNELS` input channels). It needs 2.25x fewer
multiplications than a direct convolution and runs them as 16 batched matmuls, with the kernel transformed
once beforehand, as the port keeps it per weight value (`winograd_kernel`, not timed; 16/9 of the kernel's
memory). Its GFLOP/s count the direct convolution's work, so they can pass the matmul peak; it is shown in
its own column, outside the best JAX form, and its rounding differs from a direct convolution's (1.3-1.8x
the largest error against float64, measured).
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

try:
    from benchmarks import timer as timing
except ImportError:  # asv imports benchmark modules by file
    import timer as timing  # type: ignore[no-redef]

# (frames + 2, height + 2, width + 2, in channels, out channels): padded inputs of the decoder's and the
# encoder's 3x3x3 convolutions at the real CogVideoX widths on a 32 x 32 px video.
SHAPES: tuple[tuple[int, int, int, int, int], ...] = (
    (4, 6, 6, 512, 512),
    (5, 10, 10, 512, 512),
    (7, 18, 18, 256, 256),
    (7, 34, 34, 128, 128),
    (7, 34, 34, 3, 128),
)


def forms() -> dict[str, Callable[[Any, Any], Any]]:
    """The four JAX formulations of a VALID 3x3x3 convolution, channel-last, jitted once each, the port's
    form under XLA's default options, and the Winograd form (`conv3d_winograd`)."""
    import jax
    import jax.numpy as jnp

    from implementations.vae.layers import conv3d_by_time_taps, conv3d_winograd

    hi = jax.lax.Precision.HIGHEST

    def conv3d(x: Any, k: Any) -> Any:
        dn = ("NTHWC", "THWIO", "NTHWC")
        return jax.lax.conv_general_dilated(x, k, (1, 1, 1), "VALID", dimension_numbers=dn, precision=hi)

    def taps2d(x: Any, taps: Any) -> Any:
        return conv3d_by_time_taps(x, jnp.stack(taps), None, precision=hi)

    def stack2d(x: Any, k: Any) -> Any:
        b, t, h, w, c = x.shape
        xs = jnp.concatenate([x[:, a : a + t - 2] for a in range(3)], axis=-1).reshape(
            b * (t - 2), h, w, 3 * c
        )
        kk = jnp.concatenate([k[a] for a in range(3)], axis=2)
        dn = ("NHWC", "HWIO", "NHWC")
        y = jax.lax.conv_general_dilated(xs, kk, (1, 1), "VALID", dimension_numbers=dn, precision=hi)
        return y.reshape(b, t - 2, h - 2, w - 2, -1)

    def im2col(x: Any, k: Any) -> Any:
        _, t, h, w, c = x.shape
        views = [
            x[:, a : a + t - 2, i : i + h - 2, j : j + w - 2]
            for a in range(3)
            for i in range(3)
            for j in range(3)
        ]
        return jnp.matmul(jnp.concatenate(views, axis=-1), k.reshape(27 * c, -1), precision=hi)

    from implementations.vae.model import COMPILER_OPTIONS

    forms = {
        name: jax.jit(f, compiler_options=COMPILER_OPTIONS)
        for name, f in (("conv3d", conv3d), ("taps2d", taps2d), ("stack2d", stack2d), ("im2col", im2col))
    }
    forms["taps2d-ynn"] = jax.jit(taps2d)  # XLA's default options: the convolutions in YNNPACK fusions
    for name in ("taps2d", "taps2d-ynn"):
        forms[name] = _by_taps(forms[name])
    winograd = functools.partial(conv3d_winograd, bias=None, precision=hi)
    forms["winograd"] = _by_winograd_kernel(jax.jit(winograd, compiler_options=COMPILER_OPTIONS))
    return forms


def _by_winograd_kernel(jitted: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``jitted(x, u)`` called as ``f(x, kernel)``, ``u`` the kernel's `winograd_kernel` made on its first use
    and kept for that kernel (as a port would keep it per weight value), so the timed calls do not make it."""
    import jax

    from implementations.vae.layers import winograd_kernel

    made: dict[int, tuple[Any, Any]] = {}

    def call(x: Any, k: Any) -> Any:
        hit = made.get(id(k))
        if hit is None or hit[0] is not k:
            hit = made[id(k)] = (k, jax.device_put(winograd_kernel(np.asarray(k))))
        return jitted(x, hit[1])

    return call


def _by_taps(jitted: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``jitted(x, taps)`` called as ``f(x, kernel)``: the kernel's time taps made as the port makes them on
    the CPU (zero-copy views of the kernel, `implementations.vae.model.time_taps`)."""
    from implementations.vae.model import time_taps

    return lambda x, k: jitted(x, time_taps(k))


def row(shape: tuple[int, int, int, int, int], rounds: int) -> dict[str, float]:
    """GFLOP/s of each JAX form and of PyTorch on one padded input shape."""
    import jax
    import torch

    t, h, w, c, o = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, t, h, w, c)).astype(np.float32)
    k = (rng.standard_normal((3, 3, 3, c, o)) / np.sqrt(27 * c)).astype(np.float32)
    xj, kj = jax.numpy.asarray(x), jax.numpy.asarray(k)
    fns: dict[str, Callable[[], Any]] = {}
    first = None
    for name, f in forms().items():
        out = np.asarray(f(xj, kj))
        if first is None:
            first = out
        err = float(np.max(np.abs(out - first)))
        if err > 1e-3:
            raise AssertionError(f"{name} differs from conv3d by {err:.2e} on {shape}")
        fns[name] = lambda f=f: jax.block_until_ready(f(xj, kj))
    xt = torch.from_numpy(np.moveaxis(x, -1, 1).copy())
    kt = torch.from_numpy(np.transpose(k, (4, 3, 0, 1, 2)).copy())

    def torch_conv3d() -> Any:
        with torch.no_grad():
            return torch.nn.functional.conv3d(xt, kt)

    fns["torch"] = torch_conv3d
    flops = 2 * (t - 2) * (h - 2) * (w - 2) * c * o * 27
    return {
        name: flops / tm.median / 1e9 for name, tm in timing.measure(fns, rounds=rounds, sample_s=0.2).items()
    }


def main(argv: list[str] | None = None) -> int:
    from conformance import precision

    p = argparse.ArgumentParser(prog="python -m benchmarks.conv_limit", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    precision.apply()
    peak = timing.matmul_peak()["peak_gflops"]
    print(f"float32 matmul peak now: {peak:.0f} GFLOP/s; GFLOP/s per form (frames+2, h+2, w+2, cin, cout):")
    names = [*forms(), "torch"]
    print(
        f"{'shape':<26}"
        + "".join(f"{n:>11}" for n in names)
        + f"{'best JAX / torch':>18}{'winograd / torch':>18}"
    )
    for shape in SHAPES:
        r = row(shape, args.rounds)
        best = max(v for k, v in r.items() if k not in ("torch", "winograd"))
        print(
            f"{shape!s:<26}"
            + "".join(f"{r[n]:>11.0f}" for n in names)
            + f"{best / r['torch']:>17.2f}x{r['winograd'] / r['torch']:>17.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
