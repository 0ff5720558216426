"""The ``deployctl`` console script and ``python -m deployctl``.

``deployctl --help`` and ``deployctl ci steps`` are answered by ``deployctl.cli.fast`` without importing click; every
other invocation (and any of those it does not recognise exactly) runs the Click CLI. ``DEPLOYCTL_NO_FAST_PATH=1``
always runs the Click CLI.
"""

from __future__ import annotations

import gc
import os
import sys


def main() -> int:
    if not os.environ.get("DEPLOYCTL_NO_FAST_PATH"):
        from deployctl.cli.fast import run

        code = run(sys.argv[1:])
        if code is not None:
            return code
    from deployctl.cli.main import main as cli_main

    code = cli_main()
    # The process ends now: a last full collection over boto3's and the kubernetes client's objects costs
    # 0.6-1 s at exit, for nothing. (Here, not in the CLI's main: tests call that in one long process.)
    gc.freeze()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
