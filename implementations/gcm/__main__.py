"""Command line of the JAX GCM model runner (`implementations.gcm.runner`):

    python -m implementations.gcm run --grid 121x240 --steps N --dt 300 --dtype float64|float32 \
        --platform cpu|gpu|tpu [--json PATH]

``--platform`` and, for float64, x64 are set on JAX before its first computation. The options, the
``GCM_BACKEND`` check and the exit statuses are those of `contracts.gcm.cli`, which the reference's
``python -m reference.gcm run`` (the NumPy backend) shares.
"""

from __future__ import annotations

import sys

from contracts.gcm import cli
from implementations.gcm import runner


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, backend=runner.JaxBackend.name, run=runner.run, configure=runner.configure_jax)


if __name__ == "__main__":
    sys.exit(main())
