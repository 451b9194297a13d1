"""Command line of the GCM reference's model runner (`reference.gcm.runner`, the NumPy backend):

    python -m reference.gcm run --grid 121x240 --steps N --dt 300 --dtype float64|float32 [--json PATH]

The options, the ``GCM_BACKEND`` check and the exit statuses are those of `contracts.gcm.cli`, which the
JAX side's ``python -m implementations.gcm run`` shares.
"""

from __future__ import annotations

import sys

from contracts.gcm import cli
from reference.gcm import runner


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, backend=runner.NumpyBackend.name, run=runner.run)


if __name__ == "__main__":
    sys.exit(main())
