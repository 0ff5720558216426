from __future__ import annotations

from deployctl.cli import main

raise SystemExit(main())
