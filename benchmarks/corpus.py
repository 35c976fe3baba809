"""The corpus a benchmark runs over: the whole file, or its first N records for a quick run."""

from __future__ import annotations

import gzip
from pathlib import Path


def head(corpus: Path, limit: int, tmp: Path) -> Path:
    """``corpus`` itself when ``limit`` is 0, else a JSON Lines copy of its first ``limit`` lines in ``tmp``."""
    if not limit:
        return corpus
    dst = Path(tmp) / "corpus.jsonl"
    opener = gzip.open if corpus.suffix == ".gz" else open
    with opener(corpus, "rt", encoding="utf-8") as fh, dst.open("w", encoding="utf-8") as out:
        for i, line in enumerate(fh):
            if i >= limit:
                break
            out.write(line)
    return dst
