"""Where jobfit keeps its caches, and the one file-name sanitiser every writer uses."""

from __future__ import annotations

import os
import re
from pathlib import Path


def cache_dir() -> Path:
    """``JOBFIT_CACHE`` if set, else ``~/.cache/jobfit``: the compiled spaCy pipeline per taxonomy
    version and the ICD-10-CM code list live here."""
    env = os.environ.get("JOBFIT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "jobfit"


def safe_name(name: str | None, default: str = "report") -> str:
    """A string safe as a file-name part: posting or profile text never becomes a path."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name or "").strip("._") or default
