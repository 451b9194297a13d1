"""The precision policy of parity runs: applied once at the edge, recorded in the report, checked per case.

- JAX matmuls and convolutions at ``jax_default_matmul_precision="highest"`` (otherwise an f32 matmul
  runs as TF32 on A100/H100 and as bf16 passes on TPU).
- PyTorch TF32 off for matmuls and cuDNN, float32 matmul precision "highest".
- x64 on for float64 cases only: float32 cases run with ``jax_enable_x64`` off, so an accidental promotion
  to float64 in a port shows up as a dtype error instead of hiding in a more precise result.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

MATMUL_PRECISION = "highest"


class PrecisionPolicyError(RuntimeError):
    """A parity assertion ran outside the precision policy (e.g. a float32 case with x64 on)."""


def apply() -> dict[str, Any]:
    """Apply the policy to JAX, and to PyTorch if it is loaded; return the settings in force."""
    import jax

    jax.config.update("jax_default_matmul_precision", MATMUL_PRECISION)
    apply_torch_if_loaded()
    return settings()


def apply_torch_if_loaded() -> None:
    """Turn TF32 off in PyTorch when it has been imported (importing it costs ~2 s, so never do it here).

    The pytest plugin calls this before every test, so the settings hold whenever torch code runs, and
    `check` verifies them again at every assertion of a torch backend.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


def settings() -> dict[str, Any]:
    """The precision settings in force (recorded in the report); the torch ones are enforced per test."""
    import jax

    return {
        "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
        "jax_enable_x64": "per case: on for float64 cases, off otherwise (checked at every assertion)",
        "torch_allow_tf32": "False for matmul and cuDNN, float32 matmul precision 'highest' (checked at every "
        "assertion of a torch backend)",
    }


def x64_for(dtype: str) -> bool:
    return dtype == "float64"


@contextlib.contextmanager
def for_dtype(dtype: str) -> Iterator[None]:
    """Run a block with JAX's x64 mode as the policy requires for ``dtype``."""
    import jax

    with jax.enable_x64(x64_for(dtype)):
        yield


def check(framework: str, dtype: str) -> None:
    """Raise if the current configuration breaks the policy for a ``dtype`` case of ``framework``."""
    if framework == "torch":
        torch = sys.modules.get("torch")
        if torch is not None and (torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32):
            raise PrecisionPolicyError(
                "TF32 is enabled in PyTorch; parity runs need torch.backends.cuda.matmul.allow_tf32 = False and "
                "torch.backends.cudnn.allow_tf32 = False (conformance.precision.apply())"
            )
        return
    if framework != "jax":
        return
    import jax

    precision = jax.config.jax_default_matmul_precision
    if precision not in (MATMUL_PRECISION, "float32"):
        raise PrecisionPolicyError(
            f"jax_default_matmul_precision is {precision!r}; parity runs need 'highest' "
            "(call conformance.precision.apply() or run under the pytest plugin)"
        )
    enabled = bool(jax.config.jax_enable_x64)
    if enabled != x64_for(dtype):
        raise PrecisionPolicyError(
            f"a {dtype} case ran with jax_enable_x64={enabled}; the policy is x64 on for float64 cases only "
            "(wrap the computation in `with conformance.precision.for_dtype(dtype):`)"
        )
