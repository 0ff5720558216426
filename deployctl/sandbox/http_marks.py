"""What the HTTP stand-in answers, as files in the lab's state directory: the status marked per image, and the
namespaces it serves."""

from __future__ import annotations

import json
from pathlib import Path

MARKS = "http-marks.json"  # in the lab's state directory


SERVED = "http-namespaces.json"  # the namespaces the stand-in serves


def read_marks(path: Path) -> dict[str, int]:
    """marker (a digest, or any text of an image reference) -> the HTTP status its pods answer."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def write_mark(path: Path, marker: str, status: int) -> None:
    marks = read_marks(path)
    marks[marker] = status
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(marks, sort_keys=True))
    partial.replace(path)


def served(state_dir: Path) -> set[str]:
    try:
        data = json.loads((state_dir / SERVED).read_text())
    except (OSError, ValueError):
        return set()
    return {str(n) for n in data} if isinstance(data, list) else set()


def answer(images: list[str], marks: dict[str, int]) -> tuple[int, str]:
    """What the Service answers when its ready pods run ``images``."""
    if not images:
        return 503, "no ready pod serves this Service\n"
    for image in images:
        for marker, status in marks.items():
            if marker in image:
                return status, f"HTTP {status} from {image} (marked http-{status} in the sandbox)\n"
    return 200, f"ok: {images[0]}\n"
