"""The Dask engine: the nightly run's reading and extraction on a Dask cluster, same results as a local run.

Why this shape: the driver (the process holding the DuckDB file) keeps every decision that makes a
run correct — which files are unchanged, which record wins when two claim one id, which postings are
pending, what is stored in which transaction — by running :func:`pipeline.runner.ingest` and
:func:`pipeline.runner.extract_pending` unchanged. The cluster only does the expensive pure work:

1. **read partitions** (groups of small files, JSONL line ranges, CSV row ranges): workers read,
   decode and normalise, and return :class:`Posting` / :class:`Reject` records in file order;
2. **extract partitions** (chunks of the postings that are pending after ingest, so a nightly run
   extracts only what is new or changed): each worker loads the saved spaCy pipeline once (a worker
   plugin keyed by taxonomy version) and returns compact extraction records, never spaCy Docs.

The driver consumes partition results in order and stores them keyed by posting id and content
hash, so a partition computed twice (a worker died after finishing it, or it was resubmitted) writes
the same rows once. A worker killed mid-partition is handled by Dask's scheduler, which reruns the
task elsewhere; the driver counts those reruns as *retried*. A partition that still fails is
resubmitted up to ``RESUBMITS`` times, then *failed*: a read partition is then read on the driver, an
extraction partition's postings become rejects and stay pending for the next run, as a posting the
pipeline fails on does in a local run.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
import warnings
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .extract import ExtractError, Extraction, extract
from .ingest import (CSV_SUFFIXES, JSONL_SUFFIXES, MAX_DECOMPRESSED, Posting, ReadOptions, Reject, decode, iter_files,
                     read_path)
from .taxonomy import Taxonomy

RESUBMITS = 2  # after Dask's own reruns (a killed worker), how often the driver resubmits a failing partition
Events = Callable[..., None]


class DaskEngineError(Exception):
    """Dask is not installed, or the scheduler cannot be reached: one clear line for the user."""


def partition_size() -> int:
    """Postings per partition (``JOBFIT_PARTITION``, default 500): about a second of one core's
    extraction, large enough that Dask's per-task overhead is noise, small enough that a killed
    worker loses little and two workers stay busy on a few thousand postings."""
    try:
        return max(1, int(os.environ.get("JOBFIT_PARTITION", "500")))
    except ValueError:
        return 500


def require_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise DaskEngineError("--engine dask needs the optional Dask extra: pip install \"jobfit[dask]\"") from exc


# --- worker side ------------------------------------------------------------------------------

_NLP: dict[str, Any] = {}  # per worker process: taxonomy version -> loaded pipeline


def _nlp_for(tax_root: str, version: str, cache_dir: str | None) -> Any:
    nlp = _NLP.get(version)
    if nlp is None:
        from .nlp import load_nlp
        from .taxonomy import load_taxonomy

        tax = load_taxonomy(Path(tax_root))
        if tax.version != version:
            raise RuntimeError(f"taxonomy at {tax_root} on this worker is version {tax.version}, the run wants {version}")
        nlp = _NLP[version] = load_nlp(tax, Path(cache_dir) if cache_dir else None)
    return nlp


try:
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPlugin
except ImportError:  # the engine is an optional extra; require_dask() says so before anything runs
    _WorkerPlugin = object  # type: ignore[assignment,misc]


class NlpPlugin(_WorkerPlugin):  # type: ignore[misc,valid-type]
    """Loads the saved pipeline for one taxonomy version when a worker starts (or restarts after a
    crash), so no partition pays for it; named by the version, so a run with another taxonomy
    registers its own."""

    def __init__(self, tax_root: str, version: str, cache_dir: str | None) -> None:
        self.tax_root, self.version, self.cache_dir = tax_root, version, cache_dir
        self.name = f"jobfit-nlp-{version}"

    def setup(self, worker: Any) -> None:
        _nlp_for(self.tax_root, self.version, self.cache_dir)


@dataclass
class ReadPart:
    """One read partition: whole files, or a record range of one JSONL/CSV file."""

    files: list[str]
    records: tuple[int, int | None] | None = None


def _read_task(part: ReadPart, max_bytes: int, mapping: dict[str, str]) -> list[tuple[str, list[Posting | Reject]]]:
    out = []
    for path in part.files:
        opts = ReadOptions(max_bytes, dict(mapping), None, part.records)
        out.append((path, list(read_path(path, opts))))
    return out


def _extract_task(rows: list[tuple], tax_root: str, version: str, cache_dir: str | None) -> list[tuple[str, str, Any]]:
    nlp = _nlp_for(tax_root, version, cache_dir)
    out: list[tuple[str, str, Any]] = []
    for posting, ex in extract([Posting(*r) for r in rows], nlp):
        if isinstance(ex, ExtractError):
            out.append(("error", posting.posting_id, (ex.source, ex.reason)))
        else:
            out.append(("ok", posting.posting_id, (ex.content_hash, ex.taxonomy_version, ex.extractor_version, ex.data)))
    return out


# --- planning (driver) --------------------------------------------------------------------------


def _kind(path: str) -> tuple[str, bool]:
    suffixes = [s.lower() for s in Path(path).suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    suffix = suffixes[-2] if gz and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    if suffix in JSONL_SUFFIXES:
        return "jsonl", gz
    if suffix in CSV_SUFFIXES:
        return "csv", gz
    return "file", gz


def _count_records(path: str, kind: str, gz: bool, max_bytes: int) -> int:
    """Lines of a JSONL file, rows of a CSV file (up to its first malformed row): how many ranges
    it is cut into. Errors count as 0 — the single partition then reports them as a local read does."""
    try:
        if kind == "jsonl":
            n = size = 0
            with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    n += chunk.count(b"\n")
                    size += len(chunk)
                    if gz and size > MAX_DECOMPRESSED:
                        return 0
            return n + 1
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
            data = fh.read(MAX_DECOMPRESSED + 1)
        text, _, problem = decode(data)
        if problem or len(data) > MAX_DECOMPRESSED:
            return 0
        csv.field_size_limit(max(max_bytes, 131072))
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if path.lower().rstrip(".gz").endswith(".tsv") else ",")
        n = -1  # the header
        try:
            for _ in reader:
                n += 1
        except csv.Error:
            pass
        return max(n, 0)
    except (OSError, EOFError, gzip.BadGzipFile):
        return 0


def plan_reads(files: Iterable[str], size: int, max_bytes: int) -> list[ReadPart]:
    """Partitions in file order: a JSONL or CSV file with more than ``size`` records is cut into
    record ranges (the last one open-ended, so nothing past a miscount is lost); other files are
    grouped ``size`` at a time."""
    parts: list[ReadPart] = []
    group: list[str] = []
    for path in files:
        kind, gz = _kind(path)
        n = _count_records(path, kind, gz, max_bytes) if kind != "file" else 0
        if n <= size:
            group.append(path)
            if len(group) >= size:
                parts.append(ReadPart(group))
                group = []
            continue
        if group:
            parts.append(ReadPart(group))
            group = []
        for lo in range(1, n + 1, size):
            hi = lo + size
            parts.append(ReadPart([path], (lo, hi if hi <= n else None)))
    if group:
        parts.append(ReadPart(group))
    return parts


# --- the engine (driver) ------------------------------------------------------------------------


@dataclass
class PartitionCounts:
    done: int = 0
    failed: int = 0
    retried: int = 0


@dataclass
class DaskEngine:
    """A connection to a Dask cluster (a LocalCluster it started, or the user's) and the run's
    partition counts. Use as a context manager so a LocalCluster is always shut down."""

    client: Any
    cluster: Any = None
    events: Events = lambda event, **fields: None
    size: int = field(default_factory=partition_size)
    counts: PartitionCounts = field(default_factory=PartitionCounts)
    _plugins: set[str] = field(default_factory=set)

    # -- lifecycle

    @classmethod
    def connect(cls, scheduler: str | None = None, n_workers: int | None = None, events: Events | None = None,
                timeout: float | None = None) -> "DaskEngine":
        """``scheduler`` None: a LocalCluster of ``n_workers`` single-threaded processes on this
        machine (spaCy holds the GIL, so threads would not help); else the cluster at that address."""
        require_dask()
        if timeout is None:
            try:
                timeout = float(os.environ.get("JOBFIT_DASK_TIMEOUT", "20"))
            except ValueError:
                timeout = 20.0
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")  # workers' logs would break --log-json
        logging.getLogger("distributed").setLevel(logging.ERROR)
        from distributed import Client, LocalCluster

        cluster = None
        try:
            if scheduler:
                client = Client(scheduler, timeout=timeout)
            else:
                from .parallel import cpu_count

                with warnings.catch_warnings():  # e.g. "port 8787 in use": noise that would break --log-json
                    warnings.simplefilter("ignore")
                    cluster = LocalCluster(n_workers=n_workers or cpu_count(), threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=":0", silence_logs=logging.ERROR)
                client = Client(cluster, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            if cluster is not None:
                cluster.close()
            where = f"the Dask scheduler at {scheduler}" if scheduler else "a local Dask cluster"
            raise DaskEngineError(f"cannot reach {where}: {str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__}") from exc
        return cls(client, cluster, events or (lambda event, **fields: None))

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    def __enter__(self) -> "DaskEngine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def workers(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    # -- running partitions in order, with bounded look-ahead

    def _suspicious(self, key: str) -> int:
        """How often the scheduler reran this task because the worker running it died."""
        def probe(dask_scheduler: Any = None, key: str = "") -> int:
            ts = dask_scheduler.tasks.get(key)
            return int(getattr(ts, "suspicious", 0) or 0) if ts is not None else 0

        try:
            return int(self.client.run_on_scheduler(probe, key=key))
        except Exception:  # noqa: BLE001 - a count for the runs table is never worth failing a run for
            return 0

    def _ordered(self, phase: str, jobs: Iterator[tuple[Callable[..., Any], tuple, Any]],
                 on_failed: Callable[[Any, BaseException], Any]) -> Iterator[Any]:
        """Submit ``(function, args, tag)`` jobs with a look-ahead of about two per worker thread and
        yield their results in submission order. A job whose task raises (including Dask's
        KilledWorker once its reruns are spent) is resubmitted; after ``RESUBMITS`` it is failed and
        ``on_failed(tag, exc)`` supplies its result."""
        window = 2 * self.workers() + 1
        inflight: deque = deque()

        def submit(fn: Callable[..., Any], args: tuple) -> Any:
            return self.client.submit(fn, *args, pure=False)

        def settle() -> Any:
            fn, args, tag, fut = inflight.popleft()
            tries = 0
            while True:
                try:
                    out = fut.result()
                    reruns = self._suspicious(fut.key)
                    break
                except Exception as exc:  # noqa: BLE001 - the partition is retried or set aside, the run goes on
                    self.counts.retried += 1 + self._suspicious(fut.key)
                    fut.release()
                    if tries >= RESUBMITS:
                        self.counts.failed += 1
                        self.events("partition_failed", phase=phase, error=f"{exc.__class__.__name__}: {str(exc)[:200]}")
                        return on_failed(tag, exc)
                    tries += 1
                    fut = submit(fn, args)
            fut.release()
            self.counts.retried += reruns
            self.counts.done += 1
            self.events("partition_done", phase=phase, done=self.counts.done, failed=self.counts.failed,
                        retried=self.counts.retried)
            return out

        for fn, args, tag in jobs:
            inflight.append((fn, args, tag, submit(fn, args)))
            if len(inflight) >= window:
                yield settle()
        while inflight:
            yield settle()

    # -- bound to a run: what the CLI calls

    def track(self, con: Any, run_id: int | None) -> None:
        """Keep the run's row in ``runs`` current with partition counts as partitions settle."""
        from . import store

        outer = self.events

        def events(event: str, **fields: Any) -> None:
            if run_id is not None and event in ("partition_done", "partition_failed"):
                c = self.counts
                store.update_run_partitions(con, run_id, "dask", c.done, c.failed, c.retried)
            outer(event, **fields)

        self.events = events
        if run_id is not None:
            store.update_run_partitions(con, run_id, "dask", 0, 0, 0)

    def ingest_reader(self, ctx: Any, paths: Iterable[str], *, max_bytes: int | None = None,
                      mapping: dict[str, str] | None = None, full: bool = False) -> Callable[[str, ReadOptions], Iterator[Posting | Reject]]:
        """The ``reader`` for :func:`pipeline.runner.ingest` with the same options: files whose
        fingerprint says ingest will skip them are not planned."""
        from . import store
        from .runner import read_options, read_signature

        opts = read_options(max_bytes, mapping)
        signature = read_signature(opts)

        def skip(path: str) -> bool:
            fp = store.file_fingerprint(path, signature)
            return not full and fp is not None and store.known_file(ctx.con, fp) is not None

        return self.reader(paths, opts, skip)

    # -- the two phases, as the hooks runner.ingest and runner.extract_pending take

    def reader(self, paths: Iterable[str], opts: ReadOptions, skip: Callable[[str], bool]) -> Callable[[str, ReadOptions], Iterator[Posting | Reject]]:
        """A ``read_path`` replacement for :func:`pipeline.runner.ingest`: files are planned into
        partitions up front (except those ``skip`` says ingest will not read: unchanged files) and
        read on the cluster ahead of ingest asking for them. A path that was not planned (stdin,
        or a plan that disagrees with ingest) is read here, as a local run reads it."""
        files = [p for p in iter_files(paths) if p != "-" and not skip(p)]
        parts = plan_reads(files, self.size, opts.max_bytes)
        self.events("partitions_planned", phase="read", partitions=len(parts), files=len(files))
        mapping = dict(opts.mapping)

        def failed(part: ReadPart, exc: BaseException) -> list[tuple[str, list[Posting | Reject]]]:
            return [(p, list(read_path(p, ReadOptions(opts.max_bytes, mapping, None, part.records)))) for p in part.files]

        results = self._ordered("read", ((_read_task, (part, opts.max_bytes, mapping), part) for part in parts), failed)
        owner = {}  # path -> number of partitions holding it
        for part in parts:
            for p in part.files:
                owner[p] = owner.get(p, 0) + 1
        ready: dict[str, deque] = {}

        def read(path: str, o: ReadOptions) -> Iterator[Posting | Reject]:
            if path not in owner:
                yield from read_path(path, o)
                return
            seen_file_level: set[tuple[str, str]] = set()
            for _ in range(owner.pop(path)):
                while not ready.get(path):
                    for p, items in next(results):
                        ready.setdefault(p, deque()).append(items)
                for item in ready[path].popleft():
                    if isinstance(item, Reject) and item.record is None:  # every range of a file repeats these
                        if (item.source, item.reason) in seen_file_level:
                            continue
                        seen_file_level.add((item.source, item.reason))
                    yield item
            ready.pop(path, None)

        return read

    def extractor(self, tax: Taxonomy, cache_dir: Path | None) -> Callable[[Iterable[Posting]], Iterator[tuple[None, Extraction | ExtractError]]]:
        """An extraction function for :func:`pipeline.runner.extract_pending`: same records, same
        order as :func:`pipeline.extract.extract`, computed by the cluster a partition at a time."""
        root, version, cdir = str(tax.root), tax.version, (str(cache_dir) if cache_dir else None)
        plugin = f"jobfit-nlp-{version}"
        if plugin not in self._plugins:
            if self.cluster is not None:  # same machine: build and save the pipeline once, before the workers load it
                from .nlp import load_nlp

                load_nlp(tax, cache_dir)
            self.client.register_plugin(NlpPlugin(root, version, cdir), name=plugin)
            self._plugins.add(plugin)

        def run(postings: Iterable[Posting]) -> Iterator[tuple[None, Extraction | ExtractError]]:
            def jobs() -> Iterator[tuple[Callable[..., Any], tuple, Any]]:
                chunk: list[tuple] = []
                for p in postings:
                    chunk.append((p.posting_id, p.source, p.title, p.text, p.format, p.meta, p.encoding))
                    if len(chunk) >= self.size:
                        yield _extract_task, (chunk, root, version, cdir), chunk
                        chunk = []
                if chunk:
                    yield _extract_task, (chunk, root, version, cdir), chunk

            def failed(chunk: list[tuple], exc: BaseException) -> list[tuple[str, str, Any]]:
                why = f"extraction failed on the cluster: {exc.__class__.__name__}: {str(exc)[:160]}"
                return [("error", row[0], (row[1], why)) for row in chunk]

            for out in self._ordered("extract", jobs(), failed):
                for kind, pid, payload in out:
                    yield None, (Extraction(pid, *payload) if kind == "ok" else ExtractError(pid, *payload))

        return run
