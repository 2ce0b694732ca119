"""The commits dataset of the generator: a clean stream of GitHub-like commits, their valid dirt, and
the defects that make a record quarantined.

The natural key is ``repo/sha``, both trimmed and lower-cased. Every rule: the pipeline's ``FORMATS.md``.
"""

from __future__ import annotations

import logging
from random import Random

from dotjoin.pipelines.csv_etl.config import COMMITS_FILE
from dotjoin.simulate.csv_etl.dirt import (
    AUTHORS,
    AUTHORS_CP1252,
    BAD_INTEGERS,
    BAD_TIMESTAMPS,
    CHUNK,
    PERIOD_END,
    PERIOD_START,
    REPOS,
    SJIS_AUTHOR,
    SJIS_MESSAGES,
    TS_FORMATS,
    Rec,
    commit_subject,
    future_ts,
    iso_z,
    mixed_case,
    multiline_message,
    other_ts_format,
    pad,
    pick,
    render_ts,
    weighted,
)

logger = logging.getLogger(__name__)

HEADER = COMMITS_FILE.columns  # the documented input format, one definition
REPO, SHA, AUTHOR_NAME, AUTHOR_EMAIL, AUTHORED_AT, COMMITTER_NAME, COMMITTED_AT, MESSAGE = range(8)
PARENTS, ADDITIONS, DELETIONS = 8, 9, 10
TS_COLUMNS = (AUTHORED_AT, COMMITTED_AT)
_SPAN = PERIOD_END - PERIOD_START - 4 * 86400  # committed_at may follow authored_at by up to 3 days

# Valid dirt of clean-stream records: (kind, weight).
VALID_DIRT = (
    ("ts_iso_offset", 2.0),
    ("ts_rfc2822", 2.0),
    ("ts_epoch", 1.5),
    ("ts_dmy", 1.5),
    ("multiline_message", 2.0),
    ("cp1252", 1.5),
    ("padded_whitespace", 1.0),
    ("quoted_all", 1.0),
    ("upper_sha", 0.5),
    ("email_case", 0.5),
)
_BAD_SHAS = ("unknown", "HEAD", "0")


class CommitsGenerator:
    """Commits: ``commits.csv`` with one row per commit (merges may be listed once per branch)."""

    dataset: str = "commits"
    data_file: str = "commits.csv"
    header: tuple[str, ...] = HEADER
    totals_names: tuple[str, ...] = ("additions", "deletions", "merge_commits", "commits")
    # Quarantine kinds of injected records and their weights; "precedence" gives two defects.
    defects: tuple[tuple[str, float], ...] = (
        ("ragged_row", 1.0),
        ("missing_field", 1.0),
        ("bad_sha", 1.0),
        ("bad_timestamp", 1.5),
        ("future_timestamp", 1.0),
        ("bad_number", 1.0),
        ("negative_count", 1.0),
        ("bad_encoding", 0.5),
        ("precedence", 1.0),
        ("bad_repeat", 0.5),
        ("defect_on_loaded_key", 0.5),
    )
    # Defects applied to a copy of an already loaded record (they keep its key intact).
    loaded_key_defects: tuple[str, ...] = (
        "bad_timestamp",
        "future_timestamp",
        "bad_number",
        "negative_count",
    )
    precedence_pairs: tuple[tuple[str, str], ...] = (
        ("bad_sha", "bad_timestamp"),
        ("bad_timestamp", "negative_count"),
        ("future_timestamp", "bad_number"),
        ("missing_field", "bad_number"),
        ("bad_encoding", "bad_sha"),
        ("negative_count", "ragged_row"),
        ("future_timestamp", "negative_count"),
    )
    duplicates: tuple[tuple[str, float], ...] = (
        ("exact_duplicate", 1.0),
        ("near_duplicate", 1.5),
        ("merge_per_branch", 1.0),
    )

    def __init__(self, *, seed: int, dirty_rate: float, valid_share: float) -> None:
        self.seed = seed
        self.valid_p = min(1.0, dirty_rate * valid_share)

    def reference_files(self) -> dict[str, str]:
        """No reference files for commits."""
        return {}

    def base_chunk(self, chunk: int) -> list[Rec]:
        """Records ``chunk * CHUNK ..`` of the clean stream (valid dirt included); all of them load."""
        rng = Random(f"dotjoin-csv/commits/{self.seed}/{chunk}")  # noqa: S311 - test data
        out = []
        p = self.valid_p
        for _ in range(CHUNK):
            rec = self.fresh(rng)
            if p and rng.random() < p:
                self._valid_dirt(rng, rec)
            out.append(rec)
        return out

    def fresh(self, rng: Random) -> Rec:
        """A clean, canonically rendered commit."""
        r = rng.random
        repo = REPOS[int(r() * len(REPOS))]
        sha = f"{rng.getrandbits(160):040x}"
        name, email = AUTHORS[int(r() * len(AUTHORS))]
        authored = PERIOD_START + int(r() * _SPAN)
        if r() < 0.25:
            authored -= authored % 60
        roll = r()
        if roll < 0.08:
            n_parents = 3 if r() < 0.05 else 2
            handle = email.split("@")[0].split(".")[0]
            message = f"Merge pull request #{1 + int(r() * 20000)} from {handle}/patch-1"
            committer, committed = "GitHub", authored + 60 * int(r() * 4320)
        else:
            n_parents = 0 if roll < 0.082 else 1
            message = "Initial commit" if n_parents == 0 else commit_subject(rng)
            if r() < 0.7:
                committer, committed = name, authored
            else:
                committer, committed = AUTHORS[int(r() * len(AUTHORS))][0], authored + 60 * int(r() * 4320)
        parents = " ".join(f"{rng.getrandbits(160):040x}" for _ in range(n_parents))
        additions = int(rng.expovariate(0.02))
        deletions = int(rng.expovariate(0.05))
        fields = [
            repo,
            sha,
            name,
            email,
            iso_z(authored),
            committer,
            iso_z(committed),
            message,
            parents,
            str(additions),
            str(deletions),
        ]
        merge = n_parents >= 2
        return Rec(
            fields,
            key=f"{repo}/{sha}",
            values=(additions, deletions, int(merge), 1),
            ts=(authored, committed),
            merge=merge,
        )

    def _valid_dirt(self, rng: Random, rec: Rec) -> None:
        kind = weighted(rng, VALID_DIRT)
        f = rec.fields
        if kind in TS_FORMATS:
            i = int(rng.random() * 2)
            f[TS_COLUMNS[i]], kind = render_ts(rng, rec.ts[i], kind)
        elif kind == "multiline_message":
            f[MESSAGE] = multiline_message(rng, f[MESSAGE], (f[AUTHOR_NAME], f[AUTHOR_EMAIL]))
        elif kind == "cp1252":
            same = f[COMMITTER_NAME] == f[AUTHOR_NAME]
            f[AUTHOR_NAME], f[AUTHOR_EMAIL] = pick_author(rng, AUTHORS_CP1252)
            if same or not _cp1252_ok(f[COMMITTER_NAME]):
                f[COMMITTER_NAME] = f[AUTHOR_NAME]
            if rng.random() < 0.5:
                f[MESSAGE] += " — naïve café fix"
            rec.encoding = "cp1252"
        elif kind == "padded_whitespace":
            for col in (REPO, SHA, AUTHOR_EMAIL, ADDITIONS, DELETIONS):
                if rng.random() < 0.5 or col == REPO:
                    f[col] = pad(rng, f[col])
        elif kind == "quoted_all":
            rec.quote_all = True
        elif kind == "upper_sha":
            f[SHA] = f[SHA].upper()
            f[PARENTS] = f[PARENTS].upper()
        else:  # email_case
            f[AUTHOR_EMAIL] = mixed_case(rng, f[AUTHOR_EMAIL])
        rec.dirt.append(kind)

    def apply_defect(self, rng: Random, rec: Rec, defect: str, avoid: set[int]) -> set[int] | None:
        """Give ``rec`` the defect ``defect`` on columns not in ``avoid``.

        Returns:
            The columns it changed, or ``None`` when the defect cannot be applied there.
        """
        f = rec.fields
        if defect == "missing_field":
            col = _free(rng, (REPO, SHA), avoid)
            if col is None:
                return None
            f[col] = "" if rng.random() < 0.7 else "   "
            return {col}
        if defect == "bad_sha":
            if PARENTS not in avoid and f[PARENTS] and rng.random() < 0.3:
                parents = f[PARENTS].split(" ")
                parents[-1] = parents[-1][:7]  # an abbreviated parent
                f[PARENTS] = " ".join(parents)
                return {PARENTS}
            if SHA in avoid:
                return None
            sha = f[SHA].strip()
            v = rng.random()
            f[SHA] = (
                sha[:39]
                if v < 0.25
                else sha + "a"
                if v < 0.45
                else sha[:39] + "g"
                if v < 0.65
                else sha[:7]
                if v < 0.85
                else pick(rng, _BAD_SHAS)
            )
            return {SHA}
        if defect in ("bad_timestamp", "future_timestamp"):
            col = _free(rng, TS_COLUMNS, avoid)
            if col is None:
                return None
            f[col] = pick(rng, BAD_TIMESTAMPS) if defect == "bad_timestamp" else future_ts(rng)
            return {col}
        if defect in ("bad_number", "negative_count"):
            col = _free(rng, (ADDITIONS, DELETIONS), avoid)
            if col is None:
                return None
            f[col] = pick(rng, BAD_INTEGERS) if defect == "bad_number" else f"-{1 + int(rng.random() * 50)}"
            return {col}
        if defect == "bad_encoding":
            cols = {AUTHOR_NAME, AUTHOR_EMAIL, COMMITTER_NAME, MESSAGE}
            if cols & avoid or rec.encoding != "utf-8":
                return None
            f[AUTHOR_NAME], f[AUTHOR_EMAIL] = SJIS_AUTHOR
            f[COMMITTER_NAME] = SJIS_AUTHOR[0]
            f[MESSAGE] = pick(rng, SJIS_MESSAGES)
            rec.encoding = "shift_jis"
            return cols
        if defect == "ragged_row":
            return _ragged(rng, f, only_extra=bool(avoid))
        raise ValueError(f"unknown commits defect {defect!r}")

    def near_duplicate(self, rng: Random, rec: Rec) -> Rec:
        """The same commit exported again: whitespace, case or timestamp format differ, the key does not."""
        dup = rec.copy()
        f = dup.fields
        changes = 0
        while changes == 0:
            if rng.random() < 0.5:
                f[AUTHOR_EMAIL] = mixed_case(rng, f[AUTHOR_EMAIL].strip())
                changes += 1
            if rng.random() < 0.4:
                for col in (REPO, SHA, AUTHOR_NAME, AUTHOR_EMAIL, ADDITIONS):
                    if rng.random() < 0.5:
                        f[col] = pad(rng, f[col].strip())
                        changes += 1
            if rng.random() < 0.3:
                f[REPO] = mixed_case(rng, f[REPO].strip())
                f[SHA] = f[SHA].strip().upper()
                changes += 1
            if rng.random() < 0.3:
                i = int(rng.random() * 2)
                f[TS_COLUMNS[i]] = other_ts_format(rng, dup.ts[i])[0]
                changes += 1
        return dup


def pick_author(rng: Random, pool: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    """A (name, email) pair from ``pool``."""
    return pool[int(rng.random() * len(pool))]


def _cp1252_ok(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _free(rng: Random, cols: tuple[int, ...], avoid: set[int]) -> int | None:
    free = [c for c in cols if c not in avoid]
    return free[int(rng.random() * len(free))] if free else None


def _ragged(rng: Random, f: list[str], *, only_extra: bool) -> set[int]:
    """Too many fields (an unquoted delimiter, a trailing one) or too few (a truncated row)."""
    v = rng.random()
    if only_extra or v < 0.5:
        if rng.random() < 0.5:
            f.append("")  # a trailing delimiter
        else:
            f.insert(len(f) - 2, str(int(rng.random() * 100)))  # an unquoted "1,234"-style split
        return set()
    del f[len(f) - 1 - int(rng.random() * 3) :]
    return set(range(len(f), len(HEADER)))
