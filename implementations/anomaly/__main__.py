"""``python -m implementations.anomaly``: the JAX port's command line (export; `implementations.anomaly.cli`)."""

import sys

from implementations.anomaly.cli import main

sys.exit(main())
