"""``python -m reference.anomaly``: the reference's command line (train, export; `reference.anomaly.cli`)."""

import sys

from reference.anomaly.cli import main

sys.exit(main())
