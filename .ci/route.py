"""`deployctl -o json ci steps` -> the route job's outputs (GITHUB_OUTPUT lines): kind, release, release_tag."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def outputs(document: dict[str, object]) -> list[str]:
    steps = document.get("steps") or []
    ids = {str(step["id"]) for step in steps if isinstance(step, dict)} if isinstance(steps, list) else set()
    return [
        f"kind={document['kind']}",
        f"release={document.get('release') or ''}",
        f"release_tag={'true' if 'release-tag' in ids else 'false'}",
    ]


if __name__ == "__main__":
    print("\n".join(outputs(json.loads(Path(sys.argv[1]).read_text()))))
