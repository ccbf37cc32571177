"""Runbook search: BM25 over SQLite FTS5 (the standard library's sqlite3), ranked by
relevance rather than "every word must appear".

- Stemming: FTS5's `porter` tokenizer, so "restarting" finds "restarts".
- Weights: the name and the title count most, then the symptom, then the body.
- Names are split into words before indexing, the way alert-named runbooks are written:
  `KubePodCrashLooping` also reads as "kube pod crash looping", `etcdNoLeader` as
  "etcd no leader" (`bullmq-queue-backpressure` and `bet_settled_queue` the tokenizer
  splits by itself).
- Symptom phrasings: a small table (`SYNONYMS`) adds the words runbooks use for what an
  engineer says ("restarting" → crashloop, "backing up" → backlog, queue depth ...).

An index is built once for a set of runbooks and then queried many times (the TUI's
`/` searches on every key).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from pagerdrill.runbooks.model import Runbook

#: bm25() column weights: name, title, symptom, body, then the words split out of the
#: names written in the title, the symptom and the body (kept apart so snippets show
#: the runbook's own text)
WEIGHTS = (6.0, 8.0, 3.0, 1.0, 8.0, 3.0, 1.0)

#: what an engineer says → the words runbooks use for it. Keys are lower-case word
#: sequences matched in the query; values are added to it (each a word or a phrase).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "restarting": ("crashloop", "crash looping", "restart", "backoff"),
    "keeps crashing": ("crashloop", "crash looping", "restart"),
    "crashing": ("crash", "crashloop", "restart"),
    "backing up": ("backlog", "queue depth", "waiting", "back pressure", "growing"),
    "piling up": ("backlog", "queue depth", "waiting", "growing"),
    "filling up": ("full", "space", "exhaust", "filling"),
    "running out": ("full", "exhaust", "space", "memory"),
    "disk": ("filesystem", "volume", "space"),
    "slow": ("latency", "slow", "p95"),
    "no leader": ("leader", "quorum", "election"),
    "not running": ("down", "stopped", "unavailable"),
    "down": ("unavailable", "unreachable", "up"),
    "unreachable": ("down", "target", "scrape"),
    "can't log in": ("sign in", "auth", "credentials"),
    "cannot log in": ("sign in", "auth", "credentials"),
    "login": ("sign in", "auth"),
    "log in": ("sign in", "auth"),
    "errors": ("5xx", "500", "error"),
    "clock": ("time", "ntp", "sync", "drift"),
    "time": ("clock", "ntp", "sync"),
    "throttled": ("throttling", "refused", "limit"),
    "wants": ("desired", "replicas", "mismatch"),
    "pods": ("pod", "replicas"),
    "out of memory": ("oom", "maxmemory", "memory"),
    "oom": ("memory", "maxmemory", "evicted"),
    "connections refused": ("handshake", "refused", "throttled"),
    "websocket": ("socket.io", "handshake", "ws"),
    "cache": ("cache", "miss"),
    "config reload": ("reload", "configuration"),
    "cpu": ("cpu", "throttling", "overcommit"),
    "alerts": ("rule", "evaluation"),
}

#: words that say nothing about which runbook is meant
STOP_WORDS = frozenset(
    (
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "its",
        "on",
        "in",
        "of",
        "to",
        "for",
        "and",
        "or",
        "but",
        "with",
        "at",
        "by",
        "from",
        "as",
        "this",
        "that",
        "these",
        "those",
        "my",
        "our",
        "we",
        "i",
        "you",
        "they",
        "keep",
        "keeps",
        "kept",
        "doesn't",
        "does",
        "not",
        "dont",
        "don't",
        "have",
        "has",
        "had",
        "some",
        "any",
        "all",
        "very",
        "again",
        "",
    )
)

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[_.:/-][A-Za-z0-9]+)*")
_QUERY_WORD = re.compile(r"[a-z0-9][a-z0-9']*")


def name_words(text: str) -> str:
    """The words of each CamelCase, lowerCamel, kebab or snake name in `text`."""
    extra: list[str] = []
    for ident in _IDENT.findall(text):
        parts = [p.lower() for piece in re.split(r"[_.:/-]", ident) for p in _CAMEL.findall(piece)]
        if len(parts) > 1:
            extra.append(" ".join(parts))
    return " ".join(extra)


def split_names(text: str) -> str:
    """`text` followed by the words of its names."""
    extra = name_words(text)
    return f"{text}\n{extra}" if extra else text


def expand_query(query: str) -> list[str]:
    """The query's words (stop words out) and the synonyms of its phrases, each as an
    FTS5 string (a phrase when it has several words)."""
    low = query.lower().replace("’", "'")
    words = _QUERY_WORD.findall(split_names(query).lower())
    terms = [w.strip("'") for w in words if w not in STOP_WORDS and w.strip("'")]
    padded = f" {' '.join(_QUERY_WORD.findall(low))} "
    for phrase, more in SYNONYMS.items():
        if f" {phrase} " in padded:
            terms.extend(more)
    return list(dict.fromkeys(terms))


def _fts_query(terms: Sequence[str]) -> str:
    quoted = []
    for t in terms:
        words = re.findall(r"[a-z0-9]+", t.lower())
        if words:
            quoted.append('"' + " ".join(words) + '"')
    return " OR ".join(dict.fromkeys(quoted))


@dataclass(frozen=True)
class Hit:
    runbook: Runbook
    score: float
    """Higher is better (the negated bm25)."""
    snippet: str


class RunbookIndex:
    """An in-memory FTS5 index of a set of runbooks."""

    def __init__(self, runbooks: Sequence[Runbook]) -> None:
        self.runbooks = list(runbooks)
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute(
            "create virtual table rb using fts5(name, title, symptom, body, "
            "title_words, symptom_words, body_words, tokenize = 'porter unicode61')"
        )
        self._db.executemany(
            "insert into rb(rowid, name, title, symptom, body, title_words, symptom_words, "
            "body_words) values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    i,
                    split_names(rb.name),
                    rb.title,
                    rb.symptom,
                    rb.body,
                    name_words(rb.title),
                    name_words(rb.symptom),
                    name_words(rb.body),
                )
                for i, rb in enumerate(self.runbooks)
            ],
        )

    def search(self, query: str, limit: int | None = None) -> list[Hit]:
        """Runbooks by relevance to `query`, best first; an empty query lists them all."""
        match = _fts_query(expand_query(query))
        if not match:
            hits = [Hit(rb, 0.0, excerpt(rb.symptom)) for rb in self.runbooks]
            hits.sort(key=lambda h: h.runbook.name)
            return hits[:limit] if limit else hits
        w = ", ".join(str(x) for x in WEIGHTS)
        rows = self._db.execute(
            f"select rowid, bm25(rb, {w}) as rank, "
            "snippet(rb, 2, '\x01', '\x02', '…', 12), snippet(rb, 3, '\x01', '\x02', '…', 12) "
            "from rb where rb match ? order by rank, rowid limit ?",
            (match, limit or -1),
        ).fetchall()
        hits = []
        for rowid, rank, in_symptom, in_body in rows:
            rb = self.runbooks[rowid]
            if "\x01" in in_symptom:
                snippet = _excerpt_of(in_symptom, rb.symptom)
            elif "\x01" in in_body:
                snippet = _excerpt_of(in_body, rb.body)
            else:
                snippet = excerpt(rb.symptom)
            hits.append(Hit(rb, -rank, snippet))
        return hits

    def close(self) -> None:
        self._db.close()


EXCERPT_CHARS = 160
"""A hit's excerpt at most: two rows of an 80-column terminal."""

_WORD = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"[.!?][)\]\"'`*]*$")


def excerpt(text: str, at: int = 0, limit: int = EXCERPT_CHARS) -> str:
    """The sentence of `text` that holds position `at`, whole when it fits in `limit`
    characters; else the words of it around `at` that fit, with an ellipsis where the
    sentence goes on. Cut only between words (a word longer than `limit` is kept
    whole), so an excerpt never ends mid-word; line breaks read as spaces."""
    words = [(m.start(), m.group()) for m in _WORD.finditer(text)]
    if not words:
        return ""
    hit = next((i for i, (start, w) in enumerate(words) if start + len(w) > at), len(words) - 1)
    first = hit
    while first > 0 and not _ends_sentence(text, words, first - 1):
        first -= 1
    last = hit
    while last < len(words) - 1 and not _ends_sentence(text, words, last):
        last += 1
    sentence = [w for _, w in words[first : last + 1]]
    if len(" ".join(sentence)) <= limit:
        return " ".join(sentence)
    lo = hi = hit - first  # the words kept: sentence[lo : hi + 1], the hit's among them
    size = len(sentence[lo])
    room = limit - 2  # an ellipsis each side at most
    # up to a third of the room before the hit, then after it, then before it again
    while lo > 0 and size + 1 + len(sentence[lo - 1]) <= room // 3:
        lo -= 1
        size += 1 + len(sentence[lo])
    while hi < len(sentence) - 1 and size + 1 + len(sentence[hi + 1]) <= room:
        hi += 1
        size += 1 + len(sentence[hi])
    while lo > 0 and size + 1 + len(sentence[lo - 1]) <= room:
        lo -= 1
        size += 1 + len(sentence[lo])
    out = " ".join(sentence[lo : hi + 1])
    return ("…" if lo > 0 else "") + out + ("…" if hi < len(sentence) - 1 else "")


_BLOCK = re.compile(r"\n\s*\n|\n\s*(?:#{1,6}\s|[>|]|[-*+]\s|\d+\.\s|```)")
"""A break in markdown that ends a sentence whatever its punctuation: a blank line, or
a heading, list item, quote, table row or code fence starting the next line."""


def _ends_sentence(text: str, words: list[tuple[int, str]], i: int) -> bool:
    """Word `i` ends a sentence: a markdown block ends after it, or it ends in . ! or ?
    and the next word does not begin in lower case (so "e.g. the" goes on)."""
    if i + 1 >= len(words):
        return True
    start, word = words[i]
    if _BLOCK.match(text, start + len(word), words[i + 1][0] + 5):
        return True
    return bool(_SENTENCE_END.search(word)) and not words[i + 1][1][:1].islower()


def _excerpt_of(piece: str, text: str) -> str:
    """The excerpt of `text` around the first match FTS5's snippet `piece` marks. The
    snippet is cut at tokens (mid-sentence, and mid-name in `bet_settled_queue`); it
    only says where the match is."""
    core = piece.removeprefix("…").removesuffix("…")
    before = core[: core.index("\x01")].replace("\x02", "")
    where = text.find(core.replace("\x01", "").replace("\x02", ""))
    if where < 0:  # not verbatim (it always is): the snippet's own words, made whole
        return excerpt(" ".join(core.replace("\x01", "").replace("\x02", "").split()))
    return excerpt(text, where + len(before))


_last: tuple[tuple[int, ...], RunbookIndex] | None = None


def search(runbooks: Sequence[Runbook], query: str, limit: int | None = None) -> list[Hit]:
    """Search `runbooks`; the index of the last set searched is kept, so a caller that
    searches the same list on every key builds it once."""
    global _last
    key = tuple(id(rb) for rb in runbooks)
    if _last is None or _last[0] != key:
        _last = (key, RunbookIndex(runbooks))
    return _last[1].search(query, limit)
