"""The ``deployctl`` console script and ``python -m deployctl``.

``deployctl --help`` and ``deployctl ci steps`` are answered by ``deployctl.fast`` without importing click; every
other invocation (and any of those it does not recognise exactly) runs the Click CLI. ``DEPLOYCTL_NO_FAST_PATH=1``
always runs the Click CLI.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    if not os.environ.get("DEPLOYCTL_NO_FAST_PATH"):
        from deployctl.fast import run

        code = run(sys.argv[1:])
        if code is not None:
            return code
    from deployctl.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
