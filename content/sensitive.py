"""Sensitive words: the lists a deployment and each account keep, and the review that reads them.

A review finds every listed word in a text in one pass with an Aho–Corasick automaton (built
here, no dependency): a trie of the folded words whose failure links let the scan go on from
the longest suffix still matching instead of backing up, so a text is read once however many
words there are, and overlapping words (``he``, ``she``, ``hers`` in ``ushers``) are all found.

Matching is case-insensitive for Latin letters and treats full-width ASCII (``ＡＢＣ``) as its
half-width twin, the usual way to dodge a filter in Chinese text. Folding keeps one character
for one character, so every match's ``start``/``end`` index the original text.

The lists live in the store (``sensitive_words``: one document per word, ``account_id`` null
for the global list) with a version stamp per list (``sensitive_lists``) bumped in the same
transaction as every change. :class:`ReviewPolicy` keeps the automata it built keyed by those
stamps: a review reads the stamps (one small query), and rebuilds only when a list changed,
in this process or another.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.errors import Invalid
from store.clock import rfc3339
from store.ids import new_id
from store.port import DocumentStore, DuplicateKeyError, Index

WORDS = "sensitive_words"
LISTS = "sensitive_lists"
GLOBAL = "global"  # the list id of the deployment-wide list; account lists use the account id
INDEXES = [Index(WORDS, ("list_id", "key"), unique=True)]
MAX_WORD = 50
MAX_WORDS_PER_CALL = 1000
MAX_STORED_MATCHES = 50


def fold_char(ch: str) -> str:
    """One character, folded for matching; always exactly one character back."""
    code = ord(ch)
    if 0xFF01 <= code <= 0xFF5E:  # full-width ASCII → ASCII
        ch = chr(code - 0xFEE0)
    low = ch.lower()
    # 'İ'.lower() is two characters: such letters stay as they are, so positions hold.
    return low if len(low) == 1 else ch


def fold(text: str) -> str:
    return "".join(fold_char(ch) for ch in text)


@dataclass(frozen=True)
class Match:
    word: str  # as listed, not as found
    start: int
    end: int  # exclusive: text[start:end] is the matched span
    field: str | None = None  # which field of a document, for a review of several


class Automaton:
    """An Aho–Corasick automaton over folded words. Immutable once built."""

    def __init__(self, words: Iterable[str]) -> None:
        self._goto: list[dict[str, int]] = [{}]
        self._fail: list[int] = [0]
        # Every word ending at a state, its own and those of its failure chain, as
        # (word, length), so a scan reports all overlapping matches without walking the chain.
        self._out: list[list[tuple[str, int]]] = [[]]
        seen: set[str] = set()
        for word in words:
            key = fold(word)
            if not key or key in seen:
                continue
            seen.add(key)
            state = 0
            for ch in key:
                nxt = self._goto[state].get(ch)
                if nxt is None:
                    nxt = len(self._goto)
                    self._goto.append({})
                    self._fail.append(0)
                    self._out.append([])
                    self._goto[state][ch] = nxt
                state = nxt
            self._out[state].append((word, len(key)))
        self.size = len(seen)
        self._link()

    def _link(self) -> None:
        # Breadth first, so a state's failure target (a shorter suffix) is finished before it.
        queue = deque(self._goto[0].values())
        while queue:
            state = queue.popleft()
            for ch, nxt in self._goto[state].items():
                queue.append(nxt)
                back = self._fail[state]
                while back and ch not in self._goto[back]:
                    back = self._fail[back]
                self._fail[nxt] = self._goto[back].get(ch, 0)
                self._out[nxt] = self._out[nxt] + self._out[self._fail[nxt]]

    def find(self, text: str, *, limit: int | None = None) -> list[Match]:
        """Every occurrence of every word, overlapping ones included, ordered by end then
        longest first; with ``limit``, only the first that many (a hostile text of one
        repeated letter against words of that letter has millions of overlapping matches)."""
        found: list[Match] = []
        goto, fail, out = self._goto, self._fail, self._out
        state = 0
        for i, raw in enumerate(text):
            ch = fold_char(raw)
            while state and ch not in goto[state]:
                state = fail[state]
            state = goto[state].get(ch, 0)
            for word, length in out[state]:
                found.append(Match(word, i + 1 - length, i + 1))
                if limit is not None and len(found) >= limit:
                    return found
        return found


@dataclass(frozen=True)
class Review:
    flagged: bool
    matches: tuple[Match, ...]

    def to_doc(self) -> dict[str, Any]:
        # Kept for the moderator to see where the words are; a text stuffed with them must
        # not grow the content document without bound, so only the first ones are stored.
        return {
            "flagged": self.flagged,
            "match_count": len(self.matches),
            "matches": [
                {"field": m.field, "word": m.word, "start": m.start, "end": m.end}
                for m in self.matches[:MAX_STORED_MATCHES]
            ],
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Review:
        matches = tuple(
            Match(m["word"], m["start"], m["end"], m.get("field")) for m in doc.get("matches", ())
        )
        return cls(bool(doc.get("flagged")), matches)


def _list_id(account_id: str | None) -> str:
    return GLOBAL if account_id is None else account_id


def _clean_words(words: list[str], field: str) -> list[tuple[str, str]]:
    if len(words) > MAX_WORDS_PER_CALL:
        raise Invalid(f"at most {MAX_WORDS_PER_CALL} words at once", field=field)
    cleaned: dict[str, str] = {}
    for i, word in enumerate(words):
        if not isinstance(word, str):
            raise Invalid("a word is a string", field=f"{field}.{i}")
        value = word.strip()
        if not value or any(not ch.isprintable() for ch in value):
            raise Invalid("a word needs visible characters only", field=f"{field}.{i}")
        if len(value) > MAX_WORD:
            raise Invalid(f"a word has at most {MAX_WORD} characters", field=f"{field}.{i}")
        cleaned.setdefault(fold(value), value)
    return [(key, word) for key, word in cleaned.items()]


async def add_words(
    store: DocumentStore,
    *,
    account_id: str | None,
    words: list[str],
    now: datetime,
    field: str = "words",
) -> int:
    """Add words to the global list (``account_id=None``) or an account's; returns how many
    were new. A word already listed (in any case) is left as it is."""
    cleaned = _clean_words(words, field)
    list_id = _list_id(account_id)
    added = 0
    async with store.transaction():
        docs = store.collection(WORDS)
        for key, word in cleaned:
            if await docs.find_one({"list_id": list_id, "key": key}) is not None:
                continue
            try:
                await docs.insert(
                    {
                        "id": new_id("sw"),
                        "list_id": list_id,
                        "account_id": account_id,
                        "key": key,
                        "word": word,
                        "created_at": rfc3339(now),
                    }
                )
            except DuplicateKeyError:
                continue  # added meanwhile by another process: the list holds it either way
            added += 1
        if added:
            await _bump(store, list_id)
    return added


async def remove_words(
    store: DocumentStore, *, account_id: str | None, words: list[str], field: str = "words"
) -> int:
    """Remove words (matched case-insensitively); returns how many were listed."""
    list_id = _list_id(account_id)
    keys = [key for key, _ in _clean_words(words, field)]
    async with store.transaction():
        removed = await store.collection(WORDS).delete_many(
            {"list_id": list_id, "key": {"$in": keys}}
        )
        if removed:
            await _bump(store, list_id)
    return removed


async def list_words(store: DocumentStore, *, account_id: str | None) -> list[str]:
    docs = await store.collection(WORDS).find({"list_id": _list_id(account_id)}, sort=[("key", 1)])
    return [d["word"] for d in docs]


async def _bump(store: DocumentStore, list_id: str) -> None:
    await store.collection(LISTS).update_one({"id": list_id}, {"$inc": {"version": 1}}, upsert=True)


class ReviewPolicy:
    """Reviews texts against the global list plus the account's own.

    One per process, made where everything is wired. It holds only a cache of automata, one
    per list, keyed by the list's version stamp, so a stale entry is never used, only
    replaced. Lists are kept apart rather than merged per account so that the global list,
    usually the big one, is built and held once; an account without a list of its own costs
    one pass, an account with one, two.
    """

    def __init__(self, store: DocumentStore, *, cache_size: int = 256) -> None:
        self._store = store
        self._cache_size = cache_size
        self._cache: OrderedDict[str, tuple[int, Automaton]] = OrderedDict()
        self.builds = 0  # how many automata this policy built (the cache's hit check)

    async def automata(self, account_id: str | None) -> list[Automaton]:
        """The automata of the lists that apply to an account (none while no list exists)."""
        ids = [GLOBAL] if account_id is None else [GLOBAL, account_id]
        # Stamps are read before words: a change landing in between caches newer words under
        # the older stamp, which the next review sees as stale and rebuilds; never the reverse.
        stamps = {
            d["id"]: int(d.get("version", 0))
            for d in await self._store.collection(LISTS).find({"id": {"$in": ids}})
        }
        return [await self._automaton(i, stamps[i]) for i in ids if stamps.get(i)]

    async def _automaton(self, list_id: str, stamp: int) -> Automaton:
        cached = self._cache.get(list_id)
        if cached is not None and cached[0] == stamp:
            self._cache.move_to_end(list_id)
            return cached[1]
        words = await self._store.collection(WORDS).find({"list_id": list_id})
        built = Automaton(d["word"] for d in words)
        self.builds += 1
        self._cache[list_id] = (stamp, built)
        self._cache.move_to_end(list_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return built

    @staticmethod
    def _find(automata: list[Automaton], text: str) -> list[Match]:
        # A word on both lists matches the same span twice: keep the first (the global one).
        spans: dict[tuple[int, int], Match] = {}
        for automaton in automata:
            for match in automaton.find(text, limit=MAX_STORED_MATCHES + 1):
                spans.setdefault((match.start, match.end), match)
        return sorted(spans.values(), key=lambda m: (m.end, m.start))

    async def review_text(self, text: str, *, account_id: str | None) -> Review:
        matches = self._find(await self.automata(account_id), text)
        return Review(bool(matches), tuple(matches))

    async def review_fields(self, fields: Mapping[str, str], *, account_id: str | None) -> Review:
        """Review several named texts with the same automata; each match names its field."""
        automata = await self.automata(account_id)
        matches = [
            Match(m.word, m.start, m.end, name)
            for name, text in fields.items()
            for m in self._find(automata, text)
        ]
        return Review(bool(matches), tuple(matches))
