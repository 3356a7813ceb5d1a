"""Finding name mentions in a chunk: regexes skip ordinary text in linear time, Python judges
which runs of capitalised words are names and notes the cues around them."""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass, field

from heysh.pipeline.extraction import technical
from heysh.pipeline.extraction.cues import has_keyword_type, intrinsic_cues, organisation_head
from heysh.pipeline.extraction.lexicon import lexicon

ROMAN_NUMERAL = re.compile(r"^[IVXLC]+$")
_CONTRACTIONS = frozenset({"ll", "m", "d", "ve", "re", "t", "s", "em", "n"})
_POSSESSIVE_ENDINGS = ("'s", "\u2019s", "'S", "\u2019S")

# Letters that may be capitals (Python checks); listing them lets the regex engine skip text fast.
_UPPERISH = "A-Z\u00c0-\u00de\u0100-\u024f\u0370-\u03ff\u0400-\u042f"
# A capitalised word, a dotted acronym ("U.S.") or an initial; a trailing period is kept so the
# scanner can tell "Dr." and "F." from the end of a sentence.
_CAP = (
    rf"(?:[{_UPPERISH}](?<![\w'\u2019.-].)"
    r"(?:\.(?:[^\W\d_]\.)+|\w*(?:[-'\u2019&]\w+)*\.?))"
)
_FIRST_CONNECTOR = r"(?:of|for|de|da|di|du|des|del|della|la|le|van|von|der|den|ter|y|&)"
_SECOND_CONNECTOR = r"(?:the|la|le|de|der|den|des|du|da|di|y)"
_PARTICLE = r"(?:de|da|di|du|del|della|la|le|van|von|der|den|ter|dos|das|bin|ibn|al|zu|vom)"
_SEP = r"(?:[^\S\n]+|[^\S\n]*\n[^\S\n]*)"  # blanks with at most one line break
_CANDIDATE_RE = re.compile(
    rf"{_CAP}(?:{_SEP}(?:\b{_FIRST_CONNECTOR}{_SEP}(?:\b{_SECOND_CONNECTOR}{_SEP})?)?{_CAP})*"
)
_PARTICLES_BEFORE_RE = re.compile(rf"(?<![\w'\u2019.-])\b{_PARTICLE}{_SEP}(?:{_PARTICLE}{_SEP})?$")
_PART_RE = re.compile(rf"(?P<cap>{_CAP})|(?P<nl>\n)|(?P<conn>[^\s]+)")
_BOUNDARY_RE = re.compile(r"[.!?\u2026]+(?=[\s\"'\u201d\u2019)\]]|$)|\n[^\S\n]*\n\s*|\n")
_LOWER_WORD_RE = re.compile(r"\b[a-z]+\b")
_WORD_CHAR_RE = re.compile(r"\w")
_SPACE_RE = re.compile(r"\s")
_SHOUT_RE = re.compile(r"[A-Z][A-Z'-]+\s+[A-Z][A-Z'-]+\b")
_NEXT_WORD_RE = re.compile(r"(,?)[^\S\n]*([a-z]+)\b")
# "PEP 8", "RFC 9110", "ISO 8601": an acronym and a number name a numbered document.
_NUMBER_AFTER_RE = re.compile(r" (\d{1,5}[A-Z]?)\b(?![.,]\d)")
_OPENING_QUOTES = frozenset('"\u201c')
_LOWER_SCAN_LIMIT = 20_000  # up to this length a word is found by substring search, beyond by set
# A line at least this long that ends without punctuation is taken as hard-wrapped prose (the
# next line continues the sentence); shorter lines (headings, list items) end a sentence.
_SOFT_WRAP_MIN_LINE = 60
_CACHED_SPAN = 200  # longer runs of capitalised words are rare and not worth caching


@dataclass(slots=True)
class Tok:
    start: int
    end: int
    lower: str  # lower case, periods removed
    acronym: bool = False


@dataclass(slots=True)
class Mention:
    tokens: list[Tok]
    cues: dict[str, int]
    truncated: bool = False  # "Warsaw-born" was cut to "Warsaw"
    sentence: int = 0
    initial: bool = False  # the name opens its sentence, line, label or quotation
    heading: bool = False  # the name is in a heading line
    label: bool = False  # the name is a label opening a line ("Status:")
    next_word: str = ""  # the lower-case word right after the name, if any
    after_article: bool = False  # "the Milky Way"
    extra: list[Tok] = field(default_factory=list)  # a document number ("PEP 8")


def cue(cues: dict[str, int], type_: str, score: int) -> None:
    if cues.get(type_, 0) < score:
        cues[type_] = score


def _word_before(text: str, end: int) -> str:
    start = end
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    return text[start:end]


class Scanner:
    """The mentions of one chunk, with their sentences and cues."""

    def __init__(self, original: str) -> None:
        text = technical.mask_code(original)
        self.text = text
        self.mentions: list[Mention] = []
        self._lower_words: frozenset[str] | None = None  # built for long texts only
        self.noninitial_caps: set[str] = set()  # capitalised words seen mid-sentence
        self.placeholders = technical.placeholders(text)
        self.headings = technical.heading_spans(text)
        self.labels = technical.label_ends(text)
        self.starts = self._sentence_starts()

    def seen_in_lower_case(self, word: str) -> bool:
        """Whether ``word`` (lower case) occurs in the text as a whole lower-case word."""
        text = self.text
        if len(text) > _LOWER_SCAN_LIMIT:
            if self._lower_words is None:
                self._lower_words = frozenset(_LOWER_WORD_RE.findall(text))
            return word in self._lower_words
        size = len(word)
        i = text.find(word)
        while i >= 0:
            j = i + size
            if (i == 0 or not text[i - 1].isalpha()) and (j == len(text) or not text[j].isalpha()):
                return True
            i = text.find(word, j)
        return False

    def _sentence_starts(self) -> list[int]:
        text = self.text
        lex = lexicon()
        words = lex.cue_words
        abbreviations = (
            lex.honorifics | words["closing_abbreviations"] | words["open_abbreviations"]
        )
        starts = [0]
        line_start = 0
        for m in _BOUNDARY_RE.finditer(text):
            start, end = m.span()
            if text[start] == "\n":
                short = start - line_start < _SOFT_WRAP_MIN_LINE
                line_start = end
                if m.group().count("\n") < 2 and not short:
                    continue  # hard-wrapped prose: the sentence goes on
            elif m.group() == ".":
                word = _word_before(text, start)
                lower = word.lower()
                if lower in abbreviations or (len(word) == 1 and word.isupper()):
                    continue  # "Dr. Curie", "John F. Kennedy", "Acme Inc. said"
            starts.append(end)
        # What follows a label ("Status: Final") opens a sentence of its own.
        starts.extend(end + 1 for _, end in self.labels)
        starts.sort()
        return starts

    def run(self) -> None:
        text = self.text
        stopwords = lexicon().function_words
        for m in _CANDIDATE_RE.finditer(text):
            begin, end = m.span()
            if end - begin < 12:
                word = m.group()
                if word.lower() in stopwords and not word.isupper():
                    continue  # "The", "However": the common case, settled without parsing
            if begin > 2 and text[begin - 2].islower():
                particles = _PARTICLES_BEFORE_RE.search(text, max(0, begin - 24), begin)
                if particles is not None:
                    begin = particles.start()
            self._candidate(begin, end)
        self._join_and()
        starts = self.starts
        headings = self.headings
        label_ends = dict(self.labels)
        for mention in self.mentions:
            first = mention.tokens[0]
            begin = first.start
            k = bisect.bisect_right(starts, begin) - 1
            mention.sentence = k
            mention.initial = _WORD_CHAR_RE.search(text, starts[k], begin) is None
            if not mention.initial:
                quoted = text[max(0, begin - 3) : begin].rstrip()
                if quoted and quoted[-1] in _OPENING_QUOTES:
                    opener = quoted[:-1]
                    mention.initial = not opener or opener[-1].isspace()
            if begin in label_ends:
                mention.initial = True
                mention.label = label_ends[begin] == mention.tokens[-1].end
            h = bisect.bisect_right(headings, (begin, len(text))) - 1
            mention.heading = h >= 0 and headings[h][0] <= begin < headings[h][1]
            if not mention.initial and not mention.heading:
                self.noninitial_caps.add(first.lower)
            if not mention.heading:
                self.noninitial_caps.update(t.lower for t in mention.tokens[1:])
            self._context(mention)

    def _join_and(self) -> None:
        """Join "Securities and Exchange Commission": "and" inside an organisation's name."""
        mentions = self.mentions
        if len(mentions) < 2:
            return
        text = self.text
        joined: list[Mention] = [mentions[0]]
        for mention in mentions[1:]:
            left = joined[-1]
            gap = text[left.tokens[-1].end : mention.tokens[0].start]
            if (
                gap in (" and ", " & ")
                and not left.cues
                and not mention.cues
                and left.tokens[-1].end - left.tokens[0].start < 80
                and organisation_head(tuple(t.lower for t in mention.tokens))
                and (
                    not intrinsic_cues(tuple(t.lower for t in left.tokens), False)
                    or any(t.lower in ("of", "for") for t in left.tokens)
                )
            ):
                amp = Tok(left.tokens[-1].end + 1, mention.tokens[0].start - 1, gap.strip())
                joined[-1] = Mention([*left.tokens, amp, *mention.tokens], {}, mention.truncated)
            else:
                joined.append(mention)
        self.mentions = joined

    def _context(self, mention: Mention) -> None:
        """Cues from the words around a mention."""
        text = self.text
        lex = lexicon()
        cue_words = lex.cue_words
        begin = mention.tokens[0].start
        words = text[max(0, begin - 48) : begin].split()
        p1 = words[-1] if words else ""
        p2 = words[-2] if len(words) >= 2 and p1.isalpha() else ""
        p3 = words[-3] if len(words) >= 3 and p2.isalpha() else ""
        l1, l2 = p1.lower(), p2.lower()
        if p1.isalpha():
            if l1 in ("the", "a", "an"):
                mention.after_article = True
            if l1 in cue_words["person_leaders"]:
                cue(mention.cues, "PERSON", 2)  # 'said Tom'
            elif p1.islower() and l1 in lex.titles:
                cue(mention.cues, "PERSON", 2)  # "her aunt Isobel", "the physicist Pierre"
            elif l1 == "to" and p2.lower() in cue_words["motion_verbs"]:
                cue(mention.cues, "LOCATION", 1)  # "moved to Paris"
        if l1 == "the" and p2.isalpha():
            p1, l1, p2, l2 = p2, l2, p3, p3.lower()
        if (
            p1.isalpha()
            and l1 in cue_words["location_prepositions"]
            and not (p2[:1].isupper() and p2.isalpha())  # "Prize in Physics"
            and not (l1 in ("at", "to") and l2 in cue_words["at_verbs"])  # "looked at Tom"
        ):
            cue(mention.cues, "LOCATION", 1)
        last = mention.tokens[-1]
        number = _NUMBER_AFTER_RE.match(text, last.end)
        # "Apollo 11", "Hut 8", "RFC 9110"; a version after a product is no part of it.
        if (
            number is not None
            and text[last.end - 1] != "."
            and (last.acronym or last.lower not in lex.technical_terms)
        ):
            mention.extra.append(Tok(number.start(1), number.end(1), number.group(1)))
            if last.acronym and len(mention.tokens) == 1:
                cue(mention.cues, "CONCEPT", 5)  # "RFC 9110" is a document
            return
        after = _NEXT_WORD_RE.match(text, last.end)
        if after is not None:
            word = after.group(2)
            if not after.group(1):
                mention.next_word = word
            if word in cue_words["person_followers"]:
                cue(mention.cues, "PERSON", 2)

    def _candidate(self, begin: int, end: int) -> None:
        text = self.text
        span = text[begin:end]
        soft: tuple[bool, ...] = ()
        if "\n" in span:  # which line breaks inside the run continue a hard-wrapped sentence
            breaks = [begin + i for i, char in enumerate(span) if char == "\n"]
            soft = tuple(i - text.rfind("\n", 0, i) - 1 >= _SOFT_WRAP_MIN_LINE for i in breaks)
        parse = parse_candidate if len(span) <= _CACHED_SPAN else parse_candidate.__wrapped__
        for tokens, person, truncated in parse(span, soft):
            self.mentions.append(
                Mention(
                    [Tok(begin + s, begin + e, lower, acronym) for s, e, lower, acronym in tokens],
                    {"PERSON": 5} if person else {},  # "Mrs. Washington" is a person
                    truncated,
                )
            )


# (start, end, lower-case form, is an acronym), offsets relative to the candidate run
_TokTuple = tuple[int, int, str, bool]
# (tokens, announced by an honorific, cut from a hyphenated word)
_MentionTemplate = tuple[tuple[_TokTuple, ...], bool, bool]


@functools.lru_cache(maxsize=32768)
def parse_candidate(span: str, soft: tuple[bool, ...]) -> tuple[_MentionTemplate, ...]:
    """Split a run of capitalised words into name mentions (cached: names repeat a lot).

    ``soft[i]`` tells whether the i-th line break of the run continues the sentence.
    """
    lex = lexicon()
    found: list[_MentionTemplate] = []
    cur: list[_TokTuple] = []
    pending: list[_TokTuple] = []  # connectors after ``cur``, or particles before a name
    person = False  # the current name was announced by an honorific
    person_next = False  # an honorific announced the next name
    truncated = False

    def flush() -> None:
        nonlocal cur, person, truncated
        if cur:
            found.append((tuple(cur), person, truncated))
            cur, person, truncated = [], False, False
        pending.clear()

    parts: list[tuple[str | None, int, int, str]]
    if _SPACE_RE.search(span):
        parts = [(p.lastgroup, *p.span(), p.group()) for p in _PART_RE.finditer(span)]
    else:
        parts = [("cap", 0, len(span), span)]  # one word: the common case
    # Words in capitals next to each other are a shouted heading, not acronyms.
    caps_run = [False] * len(parts)
    if len(parts) > 1 and _SHOUT_RE.search(span):
        caps_run = [
            kind == "cap"
            and len(w := word.rstrip(".")) >= 2
            and "." not in w
            and w.replace("-", "").replace("&", "").isalpha()
            and w.isupper()
            for kind, _, _, word in parts
        ]
    line_break = 0
    for index, (kind, start, stop, raw) in enumerate(parts):
        if kind == "nl":
            if not soft[line_break]:
                flush()  # a heading or list line ends here
                person_next = False
            line_break += 1
            continue
        if kind == "conn":  # lower-case connector or particle (the regex allows no other)
            if cur or raw in lex.particles:
                pending.append((start, stop, raw, False))
            continue
        period = raw.endswith(".") and not (len(raw) > 2 and raw[-3] == ".")  # not "U.S."
        if period:
            raw = raw[:-1]
        dotted = "." in raw
        ends_name = cut = False
        if raw.endswith(_POSSESSIVE_ENDINGS) and len(raw) > 2:
            raw = raw[:-2]
            ends_name = True
        if "'" in raw or "\u2019" in raw:
            tail = raw.replace("\u2019", "'").rpartition("'")[2]
            if tail.lower() in _CONTRACTIONS:  # "I'll", "Don't", "Yes'm"
                flush()
                person_next = False
                continue
        if "-" in raw:
            tail = raw.rpartition("-")[2][:1]
            if not (tail.isupper() or tail.isdigit()):  # "UTF-8" and "Joliot-Curie" stay
                raw = raw.partition("-")[0]  # "Warsaw-born" names "Warsaw"
                ends_name = cut = True
        lower = raw.replace(".", "").lower() if dotted else raw.lower()
        letters = raw.replace(".", "")
        caps = len(letters) >= 2 and letters.isupper()
        acronym = dotted or caps
        tok = (start, start + len(raw), lower, acronym)
        announced, person_next = person_next, False
        shouting = caps_run[index] and (
            (index > 0 and caps_run[index - 1]) or (index + 1 < len(parts) and caps_run[index + 1])
        )
        is_name = False
        if not raw[:1].isupper():
            flush()  # a lower-case non-ASCII word the regex let through
        elif cur and not pending and ROMAN_NUMERAL.match(raw):
            is_name = True  # "World War I"
        elif shouting or (caps and len(raw) > 6 and lower not in lex.technical_terms):
            flush()  # a heading in capitals
        elif lower in lex.function_words and not (acronym and lower in lex.places):
            flush()
        elif lower in lex.honorifics and not acronym:
            flush()
            person_next = True
        elif len(raw) == 1 and not cur and not period:
            flush()  # a lone capital letter; "Plan B" continues a name
        else:
            is_name = True
        if is_name:
            joins = bool(cur) and not announced
            if joins and pending:
                # "Marie Curie of Warsaw" is a person and a place, not one name.
                person_like = (
                    len(cur) >= 2
                    and cur[0][2] in lex.given_names
                    and not has_keyword_type(tuple(c[2] for c in cur))
                )
                if pending[0][2] in ("of", "for") and (
                    person_like
                    or lower in lex.given_names  # nor "made in Kent for William"
                    or lower in lex.technical_terms  # nor "CPython for Python"
                    or cur[-1][2] in lex.technical_terms
                ):
                    joins = False
            elif joins and lower in lex.given_names and cur[-1][2] in lex.heads:
                joins = False  # "On Christmas Day William was crowned"
            if joins:
                cur.extend(pending)
                cur.append(tok)
                pending.clear()
            else:
                particles = [p for p in pending if p[2] in lex.particles] if not cur else []
                flush()
                cur = [*particles, tok]
                person = announced
            truncated = cut
            if ends_name:
                flush()
        if period and is_name:
            if not (lower in lex.cue_words["open_abbreviations"] or len(raw) == 1):
                flush()  # the end of a sentence, or "Inc.": the name ends
        elif period and not person_next:
            flush()
    flush()
    return tuple(found)
