from __future__ import annotations

from tfrun.cli import main

raise SystemExit(main())
