"""The VAE's divergence localizer: the torch reference (`reference.vae`) and the NNX port
(`implementations.vae`) run on the same input and weights; every named intermediate (causal convs, norms,
resnets, samplers, blocks) is captured on both sides (torch forward hooks; the port's eager capture) and
compared by `conformance.localize`, which writes the per-layer table and the error-propagation plot.

    python -m conformance localize vae --config tiny2 --out localize/ [--mutant fast-variance --offset 4]

The encoder runs on the input video; the decoder runs on the reference's posterior mean (the same latent
on both sides), so each half's errors are its own. Weights: random (``--seed``) or a diffusers checkpoint
(``--weights vae.safetensors``, with ``--config default``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np

from conformance import localize as loc_mod
from conformance import precision
from contracts.vae import config as cfgs

CONFIGS = {
    "tiny2": cfgs.tiny2,
    "tiny3": cfgs.tiny3,
    "micro": cfgs.micro,
    "diffusers-test": cfgs.diffusers_test,
    "default": cfgs.CogVideoXVAEConfig,
}


def capture_reference(module: Any, *args: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """Run a torch module; every layer the port also records, by name, in completion order."""
    import torch

    from reference.vae import layers as R
    from reference.vae import model as RM

    kinds = (
        R.CogVideoXCausalConv3d,
        R.CogVideoXSafeConv3d,
        torch.nn.GroupNorm,
        R.CogVideoXSpatialNorm3D,
        R.CogVideoXResnetBlock3D,
        R.CogVideoXDownsample3D,
        R.CogVideoXUpsample3D,
        R.CogVideoXDownBlock3D,
        R.CogVideoXMidBlock3D,
        R.CogVideoXUpBlock3D,
        RM.CogVideoXEncoder3D,
        RM.CogVideoXDecoder3D,
    )
    store: dict[str, np.ndarray] = {}
    handles = []
    for name, m in module.named_modules():
        if not name or not isinstance(m, kinds):
            continue
        if isinstance(m, R.CogVideoXSafeConv3d) and name.endswith(".conv"):
            continue  # the inner Conv3d of a causal conv: the port records the causal conv itself

        def hook(mod: Any, inputs: Any, out: Any, name: str = name) -> None:
            o = out[0] if isinstance(out, tuple) else out
            store[name] = o.detach().cpu().numpy()

        handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            out = module(*args)
    finally:
        for h in handles:
            h.remove()
    return out, store


def capture_implementation(model: Any, part: str, *args: Any) -> dict[str, np.ndarray]:
    """Run ``model.<part>`` and return every recorded layer output by its path from ``model``, channel-first.

    The capture is traced into one throw-away jit (a diagnostic run: it is traced afresh each time, so a
    patched layer is seen, and it compiles once instead of op by op)."""
    import jax
    from flax import nnx

    from implementations.vae.layers import capturing, module_names

    graphdef, state = nnx.split(model)

    def captured(state: Any, *args: Any) -> dict[str, Any]:
        m = nnx.merge(graphdef, state)
        names = module_names(m)
        with capturing() as store:
            getattr(m, part)(*args)
        return {names[k]: v for k, v in store.items() if k in names}

    out = {}
    for name, value in jax.jit(captured)(state, *args).items():
        a = np.asarray(value)
        out[name] = np.moveaxis(a, -1, 1) if a.ndim == 5 else a
    return out


def run(
    config_name: str = "tiny2",
    *,
    seed: int = 0,
    frames: int = 9,
    size: int = 16,
    offset: float = 0.0,
    spread: float = 1.0,
    dtype: str = "float32",
    mutant: str | None = None,
    weights: str | None = None,
    required: str = "excellent",
) -> loc_mod.Localization:
    import jax
    import torch

    from conformance.vae.mutants import PATCHES, patched
    from conformance.vae.twins import random_state_dict
    from implementations.vae import AutoencoderKLCogVideoX as J
    from implementations.vae.convert import load_model, read_checkpoint
    from reference.vae import AutoencoderKLCogVideoX as R

    precision.apply()
    cfg = CONFIGS[config_name]()
    ctor = ("AutoencoderKLCogVideoX", (cfg,), ())
    if weights:
        sd = {k: np.asarray(v, np.float64) for k, v in read_checkpoint(weights).items()}
        sd = {k: v.astype(dtype).astype(np.float64) for k, v in sd.items()}
    else:
        from conformance.vae.twins import torch_module

        torch_module(ctor)  # shapes of the state dict
        sd = random_state_dict(ctor, seed, dtype)
    tm = R(cfg).double().eval()
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    jm = load_model(J, (cfg,), sd, dtype=np.dtype(dtype) if dtype != "bfloat16" else jax.numpy.bfloat16)
    rng = np.random.default_rng(seed)
    x = (offset + spread * rng.standard_normal((1, cfg.in_channels, frames, size, size))).astype(dtype)
    with precision.for_dtype(dtype):
        moments, ref_enc = capture_reference(tm.encoder, torch.from_numpy(x.astype(np.float64)))
        latent = moments[0][:, : cfg.latent_channels].numpy().astype(dtype)
        _, ref_dec = capture_reference(tm.decoder, torch.from_numpy(latent.astype(np.float64)))
        with patched(PATCHES[mutant] if mutant else [], eager=False):
            act_enc = capture_implementation(jm, "encoder", np.moveaxis(x, 1, -1))
            act_dec = capture_implementation(jm, "decoder", np.moveaxis(latent, 1, -1))
    reference = {
        **{f"encoder.{k}": v for k, v in ref_enc.items()},
        **{f"decoder.{k}": v for k, v in ref_dec.items()},
    }
    return loc_mod.localize(reference, {**act_enc, **act_dec}, dtype=dtype, required=required)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m conformance localize vae", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--config", default="tiny2", choices=sorted(CONFIGS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=int, default=9)
    p.add_argument("--size", type=int, default=16, help="H = W of the input video")
    p.add_argument("--offset", type=float, default=0.0, help="mean of the input (offset-mean regime)")
    p.add_argument("--spread", type=float, default=1.0, help="standard deviation of the input")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--required", default="excellent", help="tier every layer must reach (default: excellent)")
    p.add_argument(
        "--mutant",
        choices=sorted(__import__("conformance.vae.mutants", fromlist=["PATCHES"]).PATCHES),
        help="inject a known porting defect into the port (a demonstration of the localizer)",
    )
    p.add_argument(
        "--weights", help="a diffusers CogVideoX VAE .safetensors checkpoint (else random weights)"
    )
    p.add_argument("--out", default="localize", help="output directory (default: ./localize)")
    args = p.parse_args(argv)
    result = run(
        args.config,
        seed=args.seed,
        frames=args.frames,
        size=args.size,
        offset=args.offset,
        spread=args.spread,
        dtype=args.dtype,
        mutant=args.mutant,
        weights=args.weights,
        required=args.required,
    )
    title = f"vae {args.config} {args.dtype}" + (f", mutant {args.mutant}" if args.mutant else "")
    paths = loc_mod.write(result, args.out, title=title)
    print(result.summary())
    for kind, path in paths.items():
        print(f"  {kind}: {path}")
    return 0 if result.first_below is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
