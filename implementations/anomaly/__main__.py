"""``python -m implementations.anomaly``: the command line of the anomaly exports (`implementations.anomaly.cli`)."""

import sys

from implementations.anomaly.cli import main

sys.exit(main())
