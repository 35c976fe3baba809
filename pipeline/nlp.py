"""The spaCy pipeline: a blank English tokenizer plus rule components built from the taxonomy.

Pipeline (all registered, all serialisable with ``nlp.to_disk`` / ``spacy.load``):

* ``jobfit_phrases`` — a SpanRuler over lower-cased tokens: taxonomy aliases, cue phrases, title aliases;
* ``jobfit_acronyms`` — a SpanRuler over exact tokens: CPC, CCS, RHIT, ICD-10-CM, Epic…;
* ``jobfit_sentences`` — a sentence splitter: end punctuation, bullets and line breaks end a sentence
  (postings are mostly bullet lines), computed on token arrays rather than token by token;
* ``jobfit_resolver`` — our component: keeps ambiguous acronyms only in a credential context, works out
  the requirement level of every item from section headings and cue words, groups "CPC or CCS"
  into one requirement, and reads codes, years, pay, arrangement and employment type.

The rulers come first because a SpanRuler loaded from disk runs every component before it over each
of its ~5,000 patterns: behind the splitter, loading took twice as long (0.30 against 0.15 s). The
tokenizer is spaCy's blank English one, made from the config, not saved: loading its ~2,700 special
cases a second time from disk cost another 45 ms of every cold start.

No statistical model and nothing downloaded: the patterns come from ``skill_taxonomy/`` only.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from pathlib import Path
from typing import Any, Iterable

import numpy
import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.attrs import IS_SPACE, ORTH, SENT_START
from spacy.util import filter_spans

from . import codes as codes_mod
from . import config
from .taxonomy import Taxonomy

EXTRACTOR_VERSION = "1"
# how the saved pipeline is laid out (component order, what is saved); part of the cache key only:
# a new layout gives the same extractions, so stored ones stay valid
LAYOUT = 2
# No parser or NER here, so spaCy's 1,000,000-character guard (sized for those) does not apply;
# ingest's --max-bytes limit is what bounds a posting.
MAX_LENGTH = 50_000_000
TERM_KINDS = ("credential", "code_system", "skill", "education")
GENERIC_CREDENTIAL = "ANY_CODING_CERT"
LEVEL_RANK = {"required": 3, "preferred": 2, "not_required": 1, "mentioned": 0}
SPANS_LOWER = "jobfit_lower"
SPANS_ORTH = "jobfit_orth"


# --------------------------------------------------------------------------------------------
# Building patterns from the taxonomy


def _phrase_patterns(tax: Taxonomy) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (lower-case phrase patterns, exact-case patterns) for the two SpanRulers."""
    lower: list[dict[str, Any]] = []
    orth: list[dict[str, Any]] = []
    for kind in TERM_KINDS:
        for term in tax.terms[kind].values():
            for alias in term.aliases:
                lower.append({"label": kind, "pattern": alias, "id": term.id})
            for acro in term.acronyms:
                orth.append({"label": kind, "pattern": acro, "id": term.id})
            for form in term.extra.get("generic_forms") or []:
                lower.append({"label": "generic_" + kind, "pattern": str(form), "id": term.id})
    for level, by_dir in (tax.cues.get("cues") or {}).items():
        for direction, phrases in by_dir.items():
            for phrase in phrases:
                lower.append({"label": "cue", "pattern": str(phrase), "id": f"{level}|{direction}"})
    for arrangement, phrases in (tax.cues.get("work_arrangement") or {}).items():
        label = {"ignore_near": "arrangement_near", "ignore_sentences_with": "arrangement_sentence"}.get(arrangement, "arrangement")
        for phrase in phrases:
            lower.append({"label": label, "pattern": str(phrase), "id": arrangement})
    for etype, phrases in (tax.cues.get("employment_type") or {}).items():
        for phrase in phrases:
            lower.append({"label": "employment", "pattern": str(phrase), "id": etype})
    for role in tax.roles.values():
        for alias in role.title_aliases:
            lower.append({"label": "role_title", "pattern": alias, "id": role.id})
    for entry in tax.non_target.get("title_phrases") or []:
        lower.append({"label": "non_target_title", "pattern": str(entry["phrase"]), "id": str(entry.get("kind", "other"))})
    for entry in tax.non_target.get("context_phrases") or []:
        lower.append({"label": "non_target_context", "pattern": str(entry["phrase"]), "id": str(entry.get("kind", "other"))})
    return lower, orth


def _rules(tax: Taxonomy) -> dict[str, Any]:
    """Everything the resolver needs besides the spans, as plain JSON (saved with the pipeline)."""
    terms: dict[str, dict[str, Any]] = {}
    for kind in TERM_KINDS:
        for term in tax.terms[kind].values():
            meta: dict[str, Any] = {"name": term.name, "category": term.category, "ambiguous": term.ambiguous}
            if kind == "credential":
                meta["issuer"] = str(term.extra.get("issuer") or "")
                meta["aliases_lower"] = [a.lower() for a in term.aliases]
            if kind == "code_system":
                meta["family"] = str(term.extra.get("family") or term.id)
            if kind == "education":
                meta["rank"] = int(term.extra.get("rank") or 0)
            terms[f"{kind}:{term.id}"] = meta
    sections: dict[str, str] = {}
    for level, phrases in (tax.cues.get("sections") or {}).items():
        for phrase in phrases:
            sections[str(phrase).lower()] = level
    ctx = tax.cues.get("credential_context") or {}
    return {
        "terms": terms,
        "sections": sections,
        "credential_context": {"window": int(ctx.get("window", 6)), "words": [str(w).lower() for w in ctx.get("words", [])]},
        "pay": tax.cues.get("pay") or {},
        "generic_credential_context": tax.cues.get("generic_credential_context") or [],
        "experience": tax.cues.get("experience") or {},
    }


def build_nlp(tax: Taxonomy) -> Language:
    """A fresh pipeline from the taxonomy. Slow-ish (pattern compilation); use :func:`load_nlp`."""
    nlp = spacy.blank("en")
    nlp.max_length = MAX_LENGTH
    lower, orth = _phrase_patterns(tax)
    ruler_lower = nlp.add_pipe(
        "span_ruler", name="jobfit_phrases", config={"spans_key": SPANS_LOWER, "phrase_matcher_attr": "LOWER", "validate": False}
    )
    ruler_lower.add_patterns(lower)
    ruler_orth = nlp.add_pipe(
        "span_ruler", name="jobfit_acronyms", config={"spans_key": SPANS_ORTH, "phrase_matcher_attr": "ORTH", "validate": False}
    )
    ruler_orth.add_patterns(orth)
    nlp.add_pipe("jobfit_sentences")
    resolver = nlp.add_pipe("jobfit_resolver")
    resolver.set_rules(_rules(tax))
    nlp.meta["name"] = "jobfit_rules"
    nlp.meta["version"] = f"{EXTRACTOR_VERSION}.0.0"
    nlp.meta["jobfit"] = {"taxonomy_version": tax.version, "extractor_version": EXTRACTOR_VERSION}
    return nlp


def _cache_path(tax: Taxonomy, cache_dir: Path | None) -> Path:
    cache_dir = Path(cache_dir) if cache_dir else config.cache_dir()
    return cache_dir / f"nlp-{tax.version}-x{EXTRACTOR_VERSION}-l{LAYOUT}-spacy{spacy.__version__}"


def ensure_saved(tax: Taxonomy, cache_dir: Path | None = None) -> None:
    """Make sure the pipeline for this taxonomy version is saved, without loading it when it is:
    the parent of extraction workers never runs the pipeline, and loading it only to throw it away
    cost ~0.3 s and ~100 MB of the parent's memory."""
    if not (_cache_path(tax, cache_dir) / "meta.json").exists():
        load_nlp(tax, cache_dir)


def load_nlp(tax: Taxonomy, cache_dir: Path | None = None) -> Language:
    """Load the pipeline built for this taxonomy version from disk, building and saving it once.

    Compiling a few thousand phrase patterns costs more than loading them, and a nightly run or a
    one-off ``jobfit score`` should not pay that on every start.
    """
    cache_dir = Path(cache_dir) if cache_dir else config.cache_dir()
    path = _cache_path(tax, cache_dir)
    if (path / "meta.json").exists():
        try:
            nlp = spacy.load(path, exclude=["tokenizer"])  # made from the config: blank English
            nlp.max_length = MAX_LENGTH
            return nlp
        except Exception:  # a half-written or stale cache: rebuild it
            pass
    nlp = build_nlp(tax)
    try:
        import shutil
        import tempfile

        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=path.name + ".", dir=cache_dir))  # unique per process
        nlp.to_disk(tmp, exclude=["tokenizer"])
        try:
            tmp.rename(path)
        except OSError:  # another process saved it first
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        pass  # a read-only cache is not an error; we just rebuild next time
    return nlp


# --------------------------------------------------------------------------------------------
# The sentence splitter

SENTENCE_ENDS = (".", "!", "?", "•", ";", "\n", "\n\n", " \n", "\n ")


@Language.factory("jobfit_sentences", default_config={"punct_chars": list(SENTENCE_ENDS)})
def make_sentences(nlp: Language, name: str, punct_chars: list[str]) -> "SentenceSplitter":
    return SentenceSplitter(nlp, punct_chars)


class SentenceSplitter:
    """A token after end punctuation or a line break starts a sentence (runs of punctuation stay
    together). Same rule as spaCy's sentencizer, done with numpy over the ORTH array: the
    sentencizer builds a Python Token per token and cost more than the tokenizer here."""

    def __init__(self, nlp: Language, punct_chars: list[str]) -> None:
        self.name = "jobfit_sentences"
        self.punct_chars = list(punct_chars)
        self._ids = numpy.asarray([nlp.vocab.strings.add(p) for p in self.punct_chars], dtype="uint64")

    def __call__(self, doc: Doc) -> Doc:
        n = len(doc)
        if n == 0:
            return doc
        arr = doc.to_array([ORTH, IS_SPACE])
        orth = arr[:, 0]
        ends = _in_ids(orth, self._ids)
        _mark_newlines(doc, orth, arr[:, 1].astype(bool), ends)
        starts = numpy.full(n, -1, dtype="int64")
        starts[0] = 1
        starts[1:][ends[:-1] & ~ends[1:]] = 1
        doc.from_array([SENT_START], starts.view("uint64").reshape(-1, 1))
        return doc


def _mark_newlines(doc: Doc, orth: Any, space: Any, ends: Any) -> None:
    """Mark whitespace tokens holding a line break, whatever spaces surround it. The tokenizer
    splits text where whitespace starts and stops, so a token with a line break in it is all
    whitespace: only the few distinct whitespace tokens need their text looked at (looking at every
    distinct token cost a third of the splitter)."""
    if not space.any():
        return
    strings = doc.vocab.strings
    sp = orth[space]
    nl = [u for u in set(sp.tolist()) if "\n" in strings[u]]
    if nl:
        ends[space] |= _in_ids(sp, numpy.asarray(nl, dtype="uint64"))


def _in_ids(values: Any, ids: Any) -> Any:
    """``numpy.isin`` for a handful of ids: one comparison per id is cheaper than isin's sort of
    the whole array (half the splitter's time went to isin)."""
    out = values == ids[0] if len(ids) else numpy.zeros(len(values), dtype=bool)
    for i in ids[1:]:
        out |= values == i
    return out


# --------------------------------------------------------------------------------------------
# The resolver component


@Language.factory("jobfit_resolver", default_config={})
def make_resolver(nlp: Language, name: str) -> "Resolver":
    return Resolver(name)


class Resolver:
    """Turns raw phrase matches into the extraction record stored in ``doc.user_data['jobfit']``."""

    def __init__(self, name: str = "jobfit_resolver") -> None:
        self.name = name
        self.rules: dict[str, Any] = {}
        self._compiled = False
        self._cue_index: dict[int, Any] = {}
        self._cue_index_of: Any = None

    # serialisation ----------------------------------------------------------------------
    def set_rules(self, rules: dict[str, Any]) -> None:
        self.rules = rules
        self._compile()

    def to_disk(self, path: str | Path, exclude: Iterable[str] = ()) -> None:
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        (p / "rules.json").write_text(json.dumps(self.rules, sort_keys=True), encoding="utf-8")

    def from_disk(self, path: str | Path, exclude: Iterable[str] = ()) -> "Resolver":
        self.set_rules(json.loads((Path(path) / "rules.json").read_text(encoding="utf-8")))
        return self

    def _compile(self) -> None:
        r = self.rules
        self.terms = r.get("terms", {})
        self.sections = r.get("sections", {})
        ctx = r.get("credential_context", {})
        self.ctx_window = int(ctx.get("window", 6))
        self.ctx_words = set(ctx.get("words", []))
        self.facts = codes_mod.FactReader(r.get("pay", {}), r.get("experience", {}))
        words = [re.escape(str(w).lower()) for w in r.get("generic_credential_context", [])]
        self._generic_ctx = re.compile(r"\b(?:" + "|".join(words) + r")\b") if words else re.compile(r"(?!)")
        self._compiled = True

    # the work ---------------------------------------------------------------------------
    def __call__(self, doc: Doc) -> Doc:
        try:
            doc.user_data["jobfit"] = self.resolve(doc)
        finally:  # per-document state must not outlive the document (pickling, memory)
            self._cue_index, self._cue_index_of, self._text = {}, None, ""
        return doc

    def resolve(self, doc: Doc) -> dict[str, Any]:
        raw: list[Span] = list(doc.spans.get(SPANS_LOWER, [])) + list(doc.spans.get(SPANS_ORTH, []))
        term_spans = [s for s in raw if s.label_ in TERM_KINDS]
        other = [s for s in raw if s.label_ not in TERM_KINDS]
        cues = [s for s in other if s.label_ == "cue"]
        cues = filter_spans(cues)
        # Doc.text rebuilds the string from its tokens on every access: read it once
        self._text = text = doc.user_data.get("text") or doc.text
        sent_of, self._sent_starts = _sentence_index(doc)
        self._n_tokens = len(doc)
        terms = self._select_terms(doc, term_spans, cues, sent_of)
        sec_starts, sec_levels = self._sections(text)
        items = []
        terms = terms + self._generic_terms(doc, other, terms, cues, sent_of)
        # the first line is the title: a credential in a job's title is what the job asks for
        title_end = doc.user_data.get("title_end", text.find("\n"))
        for span in terms:
            level = (
                self._level(doc, span, cues, sent_of)
                or ("required" if span.label_ == "credential" and span.end_char <= title_end else None)
                or _section_level(span.start_char, sec_starts, sec_levels)
                or "mentioned"
            )
            items.append((span, level))
        any_of = _any_of_groups(doc, [s for s, _ in items if s.label_ == "credential"])
        # "CPC or CCS required": every alternative takes the strongest level in its group
        # "RHIT or RHIA, CPC not accepted": an alternative the posting rules out leaves its group
        for span, level in items:
            g = any_of.get(span.start)
            if g is not None and level == "not_required":
                if span.id_ in g:
                    g.remove(span.id_)
                del any_of[span.start]
        group_level: dict[int, str] = {}
        for span, level in items:
            g = any_of.get(span.start)
            if g is not None:
                key = id(g)
                if LEVEL_RANK[level] > LEVEL_RANK.get(group_level.get(key, "mentioned"), 0):
                    group_level[key] = level
        out: dict[str, list[dict[str, Any]]] = {k: [] for k in TERM_KINDS}
        for span, level in items:
            g = any_of.get(span.start)
            if g is not None:
                level = group_level.get(id(g), level)
            meta = self.terms.get(f"{span.label_}:{span.id_}", {})
            rec: dict[str, Any] = {
                "id": span.id_,
                "requirement": level,
                "text": span.text,
                "start": span.start_char,
                "end": span.end_char,
                "sentence": _evidence(doc, text, span, self._sent_bounds(sent_of[span.start])),
            }
            if span.label_ == "credential":
                rec["issuer"] = meta.get("issuer", "")
                rec["any_of"] = sorted(set(g)) if g is not None and len(set(g)) > 1 else None
            elif span.label_ == "skill":
                rec["category"] = meta.get("category", "")
            elif span.label_ == "code_system":
                rec["family"] = meta.get("family", span.id_)
            elif span.label_ == "education":
                rec["rank"] = meta.get("rank", 0)
            out[span.label_].append(rec)
        signals = [
            {"label": s.label_, "id": s.id_, "text": s.text, "start": s.start_char, "end": s.end_char, "n_tokens": len(s)}
            for s in other
            if s.label_ in ("role_title", "non_target_title", "non_target_context")
        ]
        result: dict[str, Any] = {
            "credentials": _dedupe(out["credential"]),
            "code_systems": _dedupe(out["code_system"]),
            "skills": _dedupe(out["skill"]),
            "education": _dedupe(out["education"]),
            "codes": codes_mod.find_codes(text, [s for s in terms if s.label_ == "code_system"]),
            "signals": signals,
            "work_arrangement": self._arrangement(doc, other, sent_of),
            "employment_type": _employment(other),
        }
        result.update(self.facts.read(text))
        edu = [e for e in result["education"] if e["requirement"] != "not_required"]
        result["education_min"] = min(edu, key=lambda e: e["rank"])["id"] if edu else None
        return result

    def _select_terms(self, doc: Doc, spans: list[Span], cues: list[Span], sent_of: list[int]) -> list[Span]:
        """Longest match wins within a kind; a credential inside a code-system name (the CM of
        ICD-10-CM) is dropped; ambiguous acronyms need a credential context."""
        by_kind: dict[str, list[Span]] = {}
        for s in spans:
            by_kind.setdefault(s.label_, []).append(s)
        chosen: dict[str, list[Span]] = {k: filter_spans(v) for k, v in by_kind.items()}
        code_tokens = {i for s in chosen.get("code_system", []) for i in range(s.start, s.end)}
        creds = [s for s in chosen.get("credential", []) if not any(i in code_tokens for i in range(s.start, s.end))]
        accepted: list[Span] = []
        pending: list[Span] = []
        lower_text = None
        for s in creds:
            meta = self.terms.get(f"credential:{s.id_}", {})
            if not meta.get("ambiguous") or not _is_exact_acronym(s):
                accepted.append(s)
                continue
            if self._has_context(doc, s, sent_of) or self._level(doc, s, cues, sent_of, max_dist=2):
                accepted.append(s)
                continue
            if lower_text is None:
                lower_text = self._text.lower()
            if any(a in lower_text for a in meta.get("aliases_lower", [])):
                accepted.append(s)  # the full name is spelled out elsewhere in the posting
                continue
            pending.append(s)
        # the family of an accepted credential counts too ("CPC-A welcome ... the full CPC")
        family = {s.id_.split("-", 1)[0] for s in accepted}
        for s in list(pending):
            if s.id_.split("-", 1)[0] in family:
                accepted.append(s)
                pending.remove(s)
        # an acronym listed next to an accepted credential ("CPC, CCS or RHIT") is one too
        changed = True
        while pending and changed:
            changed = False
            for s in list(pending):
                if any(_adjacent_in_list(doc, s, a) for a in accepted):
                    accepted.append(s)
                    pending.remove(s)
                    changed = True
        # "Coding certification (CPC)", "AHIMA credential (RHIT/RHIA)": the generic phrase only
        # labels the specific credentials beside it
        specific = [s for s in accepted if s.id_ != GENERIC_CREDENTIAL]
        accepted = [s for s in accepted if s.id_ != GENERIC_CREDENTIAL
                    or not any(0 <= o.start - s.end <= 3 or 0 <= s.start - o.end <= 2 for o in specific)]
        chosen["credential"] = sorted(accepted, key=lambda s: s.start)
        out = [s for k in TERM_KINDS for s in chosen.get(k, [])]
        return sorted(out, key=lambda s: (s.start, s.label_))

    def _generic_terms(self, doc: Doc, spans: list[Span], terms: list[Span], cues: list[Span], sent_of: list[int]) -> list[Span]:
        """'Certification is not required', 'must be certified': a bare word stands for the
        generic credential only when a cue governs it and no specific credential shares its sentence."""
        cred_sents = {sent_of[s.start] for s in terms if s.label_ == "credential"}
        taken = {i for s in terms for i in range(s.start, s.end)}
        out = []
        title = self._text[: max(doc.user_data.get("title_end", self._text.find("\n")), 0)].lower()
        for s in filter_spans([s for s in spans if s.label_ == "generic_credential"]):
            if sent_of[s.start] in cred_sents or any(i in taken for i in range(s.start, s.end)):
                continue
            if self._level(doc, s, cues, sent_of, max_dist=4) is None:
                continue
            lo, hi = self._sent_bounds(sent_of[s.start])
            sentence = doc[lo:hi].text.lower()
            if not (self._generic_ctx.search(sentence) or self._generic_ctx.search(title)):
                continue  # "national certification through PTCB": not a coding certification
            out.append(Span(doc, s.start, s.end, label="credential", span_id=s.id_))
        return out

    def _sent_bounds(self, sent_no: int) -> tuple[int, int]:
        starts = self._sent_starts
        return starts[sent_no], (starts[sent_no + 1] if sent_no + 1 < len(starts) else self._n_tokens)

    def _has_context(self, doc: Doc, span: Span, sent_of: list[int]) -> bool:
        s_lo, s_hi = self._sent_bounds(sent_of[span.start])
        lo = max(s_lo, span.start - self.ctx_window)
        hi = min(s_hi, span.end + self.ctx_window)
        for tok in doc[lo:hi]:
            if tok.i >= span.start and tok.i < span.end:
                continue
            if tok.lower_ in self.ctx_words:
                return True
        # "Certified Professional Coder (CPC)" style: the acronym in brackets after its name
        return False

    def _sections(self, text: str) -> tuple[list[int], list[str]]:
        starts: list[int] = []
        levels: list[str] = []
        pos = 0
        for line in text.split("\n"):
            stripped = line.strip().strip("#*•-–—=_|> \t").strip()
            key = stripped.lower().rstrip(":").strip()
            level = self.sections.get(key) if key and len(key) <= 60 else None
            if level is None and ":" in stripped:  # "Requirements: CPC and 2 years ..." on one line
                head = stripped.split(":", 1)[0].strip().lower()
                level = self.sections.get(head) if len(head) <= 60 else None
            if level is not None:
                starts.append(pos)
                levels.append(level)
            pos += len(line) + 1
        return starts, levels

    def _cues_near(self, cues: list[Span], sent_of: list[int], span: Span, reach: int) -> list[Span]:
        """Cues of the span's sentence starting within ``reach`` tokens of it, found by bisection
        in a per-sentence index (a long one-line posting must not make this quadratic)."""
        if self._cue_index_of is not cues:
            index: dict[int, tuple[list[int], list[Span]]] = {}
            for c in sorted(cues, key=lambda c: c.start):
                starts, spans = index.setdefault(sent_of[c.start], ([], []))
                starts.append(c.start)
                spans.append(c)
            self._cue_index, self._cue_index_of = index, cues
        starts, spans = self._cue_index.get(sent_of[span.start], ([], []))
        lo = bisect_right(starts, span.start - reach - 12)
        hi = bisect_right(starts, span.end + reach)
        return spans[lo:hi]

    def _level(self, doc: Doc, span: Span, cues: list[Span], sent_of: list[int], max_dist: int = 25) -> str | None:
        """The cue that governs this item in its clause: leading cues govern what follows them
        ("must hold CPC"), trailing cues what precedes them ("CPC preferred"); nearest wins;
        an override cue ("or working towards it") wins within reach."""
        best: tuple[int, str] | None = None
        for cue in self._cues_near(cues, sent_of, span, max(max_dist, 40)):
            if cue.end <= span.start:
                if _clause_break(doc, cue.end, span.start):
                    continue
                direction = _direction(doc, cue)
                if direction == "after":
                    continue
                dist = span.start - cue.end
            elif cue.start >= span.end:
                if _clause_break(doc, span.end, cue.start):
                    continue
                direction = _direction(doc, cue)
                if direction == "before":
                    continue
                dist = cue.start - span.end
            else:  # the cue contains the item: "no certification needed"
                direction = "inside"
                dist = 0
            if dist > max_dist:
                continue
            level = cue.id_.split("|", 1)[0]
            if direction == "override" and dist <= 40:  # "X or working towards it"
                dist = -1
            if best is None or dist < best[0]:
                best = (dist, level)
        return best[1] if best else None

    def _arrangement(self, doc: Doc, spans: list[Span], sent_of: list[int]) -> str | None:
        """Arrangement phrases, less those standing within a few tokens of an ignore phrase
        ("free on-site parking", "8 weeks of on-site orientation", "remote coders")."""
        near: dict[int, list[Span]] = {}
        for i in spans:
            if i.label_ == "arrangement_near":
                near.setdefault(sent_of[i.start], []).append(i)
        skip_sents = {sent_of[s.start] for s in spans if s.label_ == "arrangement_sentence"}
        found = set()
        for s in filter_spans([s for s in spans if s.label_ == "arrangement"]):
            if sent_of[s.start] in skip_sents:
                continue
            if any(i.start - 6 <= s.end and s.start - 6 <= i.end for i in near.get(sent_of[s.start], ())):
                continue
            found.add(s.id_)
        if "hybrid" in found or {"remote", "onsite"} <= found:
            return "hybrid"
        for kind in ("remote", "onsite"):
            if kind in found:
                return kind
        if {"remote_weak", "onsite_weak"} <= found:
            return "hybrid"
        for kind in ("remote", "onsite"):
            if f"{kind}_weak" in found:
                return kind
        return None


def _is_exact_acronym(span: Span) -> bool:
    return span.text.isupper() or any(c.isdigit() for c in span.text) or "-" in span.text


def _sentence_index(doc: Doc) -> tuple[list[int], list[int]]:
    """(sentence number of every token, first token of every sentence), read from the
    SENT_START array in one pass: iterating ``doc.sents`` costs more than the whole tokenizer."""
    if len(doc) == 0:
        return [], [0]
    starts = numpy.asarray(doc.to_array(SENT_START)) == 1
    starts[0] = True
    return (numpy.cumsum(starts) - 1).tolist(), numpy.flatnonzero(starts).tolist()


def _clause_break(doc: Doc, start: int, end: int) -> bool:
    return any(t.text in (";",) for t in doc[start:end])


def _direction(doc: Doc, cue: Span) -> str:
    direction = cue.id_.split("|", 1)[1]
    if direction != "after":
        return direction
    # a trailing cue that opens its line or is followed by ':' leads ("Preferred: CCS")
    nxt = doc[cue.end] if cue.end < len(doc) else None
    prev = doc[cue.start - 1] if cue.start > 0 else None
    opens_line = prev is None or "\n" in prev.text or prev.text in ("•", "*", "-", "(") or prev.is_sent_end
    if nxt is not None and (nxt.text == ":" or (opens_line and nxt.text in ("-", "–", "—"))):
        return "before"
    return "either" if opens_line else "after"


def _section_level(start_char: int, starts: list[int], levels: list[str]) -> str | None:
    i = bisect_right(starts, start_char) - 1
    return levels[i] if i >= 0 else None


_LIST_JOINERS = {",", "or", "/", "and/or", "and", "&", "(", ")", "either", "-", "–", "®", "certification", "credential", "certified"}


def _adjacent_in_list(doc: Doc, a: Span, b: Span) -> bool:
    lo, hi = (a, b) if a.start < b.start else (b, a)
    between = doc[lo.end : hi.start]
    return len(between) <= 3 and all(t.lower_ in _LIST_JOINERS for t in between)


def _any_of_groups(doc: Doc, creds: list[Span]) -> dict[int, list[str]]:
    """Chains of credentials joined by 'or' / '/' / ',' with at least one 'or' or '/':
    one requirement that any of them satisfies."""
    groups: dict[int, list[str]] = {}
    creds = sorted(creds, key=lambda s: s.start)
    chain: list[Span] = []
    has_or = False

    def flush() -> None:
        if len(chain) > 1 and has_or:
            ids = [s.id_ for s in chain]
            for s in chain:
                groups[s.start] = ids

    for s in creds:
        if chain:
            between = doc[chain[-1].end : s.start]
            words = {t.lower_ for t in between} if len(between) <= 4 else None  # not every token between far-apart ones
            if words is not None and words <= _LIST_JOINERS:
                chain.append(s)
                has_or = has_or or bool(words & {"or", "/", "and/or", "either"})
                continue
            flush()
        chain = [s]
        has_or = False
    flush()
    return groups


def _evidence(doc: Doc, full_text: str, span: Span, bounds: tuple[int, int]) -> str:
    lo_tok, hi_tok = bounds
    start = doc[lo_tok].idx
    last = doc[hi_tok - 1]
    text = full_text[start : last.idx + len(last.text)].strip().rstrip("•*-–—").strip()
    if len(text) > 400:
        lo = max(span.start_char - start - 180, 0)
        text = "…" + text[lo : lo + 360].strip() + "…"
    return text


def _dedupe(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per id: the mention with the strongest requirement level (first on ties)."""
    best: dict[str, dict[str, Any]] = {}
    for it in items:
        cur = best.get(it["id"])
        if cur is None or LEVEL_RANK[it["requirement"]] > LEVEL_RANK[cur["requirement"]]:
            best[it["id"]] = it
    return sorted(best.values(), key=lambda x: x["start"])


def _employment(spans: list[Span]) -> str | None:
    found = [s for s in filter_spans([s for s in spans if s.label_ == "employment"])]
    return found[0].id_ if found else None
