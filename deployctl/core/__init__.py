"""The leaves every layer uses: errors and exit codes (``errors``), image and release references (``refs``)."""
