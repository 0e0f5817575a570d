from __future__ import annotations

import sys

from tfrun import express

# A read-only command that a full run prepared a moment ago becomes terraform here, before
# anything else of tfrun is imported; otherwise this returns and the full run goes on.
express.replay(sys.argv[1:])

from tfrun.cli import main  # noqa: E402

raise SystemExit(main())
