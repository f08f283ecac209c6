"""`python -m genblaze_s3.cli` (the Procfile's and Dockerfile's command)."""

import sys

from genblaze_s3.cli.app import main

sys.exit(main())
