"""Entity and relation extraction from chunks of text.

Two extractors share one small protocol (:class:`Extractor`): one result per input chunk, in
input order.

* :class:`HeuristicExtractor` is offline and deterministic (the dev default). Regexes find runs
  of capitalised words, acronyms and initials in linear time; Python judges which are names,
  guesses a type from cues, and relates entities that share a sentence.
* :class:`LlmExtractor` asks any OpenAI-compatible chat completions endpoint for a JSON document
  constrained by a JSON schema, then validates and cleans it.

Entity types are deliberately few (see :data:`ENTITY_TYPES`):

``PERSON``
    people, named by their name (titles and honorifics are not part of it);
``ORGANIZATION``
    companies, universities, institutes, agencies, governments, teams;
``LOCATION``
    countries, cities, regions, geographic features, addresses and facilities known as places;
``EVENT``
    wars, battles, revolutions, conferences, elections, games;
``CONCEPT``
    everything else that has a name: awards, theories, substances, works, products, and the
    fallback when nothing points to another type.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import openai
from openai.types.chat import ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import BaseModel, ConfigDict, ValidationError

from heysh.errors import HeyshError

__all__ = [
    "DEFAULT_RELATION_TYPE",
    "ENTITY_TYPES",
    "EXTRACTION_SCHEMA",
    "RELATION_WINDOW",
    "RESPONSE_FORMAT",
    "ChunkExtraction",
    "ChunkInput",
    "ExtractedEntity",
    "ExtractedRelation",
    "ExtractionError",
    "Extractor",
    "HeuristicExtractor",
    "LlmExtractor",
    "parse_reply",
]

ENTITY_TYPES: tuple[str, ...] = ("PERSON", "ORGANIZATION", "LOCATION", "EVENT", "CONCEPT")
"""The closed set of entity types; anything else is mapped to ``CONCEPT``."""

DEFAULT_RELATION_TYPE = "RELATED_TO"
"""Undirected co-occurrence relation (the heuristic extractor's only relation type)."""


@dataclass(frozen=True)
class ChunkInput:
    chunk_id: str
    text: str


@dataclass(frozen=True)
class ExtractedEntity:
    name: str
    type: str  # one of ENTITY_TYPES
    description: str | None = None


@dataclass(frozen=True)
class ExtractedRelation:
    source: str  # an entity name from the same chunk's entities
    target: str
    type: str


@dataclass(frozen=True)
class ChunkExtraction:
    chunk_id: str
    entities: list[ExtractedEntity]
    relations: list[ExtractedRelation]


class Extractor(Protocol):
    name: str

    async def extract(self, chunks: Sequence[ChunkInput]) -> list[ChunkExtraction]:
        """One result per input chunk, in the same order."""
        ...


class ExtractionError(HeyshError):
    """Extraction failed; ``retryable`` says whether trying the same input again may succeed."""

    code = "EXTRACTION_FAILED"

    def __init__(
        self, message: str, *, retryable: bool = False, chunk_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.chunk_id = chunk_id


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _phrases(text: str) -> frozenset[str]:
    """Comma-separated phrases, lower case with single spaces."""
    return frozenset(" ".join(part.split()).lower() for part in text.split(",") if part.strip())


# --------------------------------------------------------------------------------------------
# Heuristic extractor: word lists
# --------------------------------------------------------------------------------------------

# Capitalised forms of these are never (part of) a name: function words, pronouns, common
# sentence openers, months and weekdays. Compared in lower case.
_STOPWORDS = _words(
    """
    a an the this that these those there here it its it's i me my mine we us our ours you your
    yours he him his she her hers they them their theirs one ones who whom whose which what
    whatever whoever when whenever where wherever why how whether if unless because since as
    though although while whilst until till before after during within without into onto upon
    about above below across against along among amongst around at by for from in inside near
    of off on out outside over past per through throughout to toward towards under underneath
    up via with and or nor but so yet also too either neither both each every all any some
    many much more most few fewer less least several such other another same no not none
    nothing nobody everyone everybody everything someone somebody something anyone anybody
    anything only just even still already always never often sometimes usually rarely again
    then thus hence therefore however moreover furthermore meanwhile nevertheless nonetheless
    otherwise instead indeed besides likewise accordingly consequently subsequently finally
    firstly secondly thirdly lastly first second third next last later earlier early soon now
    today tomorrow yesterday tonight once twice together perhaps maybe almost nearly quite
    rather very really especially particularly generally typically notably namely eventually
    initially originally previously currently recently similarly additionally alternatively
    ultimately overall yes oh well please thanks thank is are was were be been being am do
    does did done doing have has had having will would shall should can could may might must
    ought let lets according following including despite regarding concerning given using
    based unlike like beyond beside between behind beneath whereas whereby wherein hereby
    except note see also chapter section figure table part page vol volume january february
    march april june july august september october november december monday tuesday
    wednesday thursday friday saturday sunday mon tue tues wed thu thurs fri sat sun jan feb
    mar apr jun jul aug sep sept oct nov dec two three four five six seven eight nine ten
    eleven twelve twenty thirty forty fifty hundred thousand million billion
    """
)
# Capitalised only because they open a sentence: dropped there, kept inside names elsewhere
# ("Great Britain" is in the gazetteer, so it survives even at the start of a sentence).
_OPENERS = _words(
    """
    say look come go take hello hi ah oh sh hey good poor dear get give make tell see know
    think want wait stop listen sure right great little big old lemme gimme shucks alas hush
    thanks why yes well okay ok sorry never mind remember consider imagine suppose note
    chief former senior junior local federal national regional global international
    """
)

# Words that may join two capitalised parts of one name ("University of Paris",
# "Vincent van Gogh", "Institute for Advanced Study"). "the" only after another connector.
_CONNECTORS = _words("of for de da di du des del della la le van von der den ter y the &")
# Lower-case particles that may open a name ("de Gaulle", "van Gogh").
_PARTICLES = _words("de da di du del della la le van von der den ter")

# Forms of address: a PERSON cue, never part of the name.
_HONORIFICS = _words(
    """
    mr mrs ms miss mx dr prof professor sir dame madame mme mlle mademoiselle monsieur herr
    frau señor senor señora senora rev reverend
    """
)
# Titles: a PERSON cue; dropped when directly followed by the name ("Queen Victoria").
_TITLES = _words(
    """
    president king queen prince princess emperor empress pope tsar czar sultan chancellor
    senator governor mayor minister premier judge justice general colonel captain lieutenant
    sergeant admiral commander marshal major duke duchess count countess baron baroness earl
    lord lady bishop archbishop cardinal rabbi imam pastor father brother sister aunt uncle
    widow cousin
    """
)
_ORG_WORDS = _words(
    """
    inc incorporated corp corporation co company companies ltd limited llc plc gmbh ag sa nv
    group holdings university universities college school academy institute institution
    agency administration authority bureau commission committee council department ministry
    office foundation trust association society union federation league party bank
    laboratory laboratories labs lab hospital clinic museum library church army navy corps
    press airlines airways motors electric systems technologies technology industries
    partners services organization organisation network studios records club team court
    congress parliament senate government assembly board service observatory conservatory
    consortium alliance coalition fund cooperative collective enterprises ventures capital
    media broadcasting newspaper journal magazine publishers publishing pharmaceuticals
    therapeutics solutions software labs agency force police brigade regiment division
    """
)
_LOCATION_WORDS = _words(
    """
    city town village county province region district territory prefecture state kingdom
    republic river lake sea ocean bay gulf mountain mountains mount mt hill hills valley
    island islands isle peninsula desert forest park street avenue road boulevard lane square
    bridge canyon coast beach cape strait falls harbor harbour port airport station plaza
    heights springs creek glacier volcano basin delta plateau plain plains reef lagoon
    continent oblast canton borough quarter
    """
)
_EVENT_WORDS = _words(
    """
    war wars battle revolution revolt rebellion uprising olympics games conference summit
    festival election elections crisis massacre siege expedition championship championships
    cup tournament world-cup pandemic epidemic famine earthquake hurricane coup invasion
    crusade exhibition expo
    """
)
# Name heads that mark a named thing that is none of the above.
_CONCEPT_WORDS = _words(
    """
    prize award awards medal theory theorem law act treaty principle effect equation
    hypothesis language model syndrome disease virus protocol algorithm method programme
    program project mission doctrine constitution declaration manifesto bible gospel
    physics chemistry mathematics biology medicine physiology literature economics
    philosophy history sociology psychology astronomy geology engineering
    """
)
# Nationality and language adjectives: part of names ("French Army"), never a name alone.
_DEMONYMS = _words(
    """
    african american arab arabic asian australian austrian belgian brazilian british
    canadian chinese czech danish dutch egyptian english european finnish french german
    greek hungarian indian irish israeli italian japanese korean latin mexican norwegian
    persian polish portuguese roman russian scottish soviet spanish swedish swiss turkish
    ukrainian welsh western eastern northern southern christian catholic protestant jewish
    muslim islamic buddhist hindu
    """
)
# Words after which a sentence-initial capitalised "-ing" word is a verb ("Building on").
_GERUND_FOLLOWERS = _words(
    "on the a an to with from by in at for of up out through into this that these those "
    "his her their its our my"
)
_LOCATION_LEADS = _words("san santa são sao los las fort mount mt lake port cape saint st")
_WEAK_LOCATION_LEADS = _words("new north south east west northern southern eastern western")
_LOCATION_PREPOSITIONS = _words("in at from near across throughout outside inside")
_PERSON_FOLLOWERS = _words(
    """
    said says told wrote asked replied explained argued who whose married himself herself
    cried answered whispered shouted exclaimed laughed smiled nodded sighed
    """
)
# Before a name: "said Tom" (dialogue attribution).
_PERSON_LEADERS = _words("said says asked replied cried answered whispered shouted exclaimed")
_ARTICLES = _words("the a an")
# "looked at Tom" is no place.
_AT_VERBS = _words(
    """
    look looked looking looks glance glanced stare stared staring laugh laughed laughing smile
    smiled gaze gazed point pointed aim aimed shout shouted yell yelled wink winked nod nodded
    talk talked speak spoke write wrote listen listened belong belonged
    """
)
_CONCEPT_ACRONYMS = _words(
    """
    dna rna ai gdp ceo cto cfo coo phd md tv pc cpu gpu api http https html url pdf usb am pm
    bc ad ce bce ok faq id hiv aids covid mri uv iq ip os sql xml json csv ram rom led lcd
    """
)
_LOCATION_ACRONYMS = _words("us usa uk uae ussr nyc la dc prc drc")
# Roman numerals are name parts ("World War II"), never names of their own.
_ROMAN_NUMERAL = re.compile(r"^[IVXLC]+$")

_FIRST_NAMES = _words(
    """
    aaron abigail adam adrian agnes ahmed alan albert alex alexander alexandra alfred alice
    alicia amanda amelia amy ana andrea andrew andré andrzej angela anna anne annie anthony
    antoine antonio arthur barbara benjamin bernard betty bill bob boris brian bruce carl
    carla carlos carol caroline catherine charles charlie charlotte chen chris christian
    christina christine christopher claire clara claude daniel david deborah dennis diana
    diego dmitri donald dorothy douglas edward elena elizabeth ellen emily emil emile émile
    emma eric ernest ernst eva francesco francis françois francois frank franz frederick
    friedrich gabriel george georg georges gerald gregory hannah hans harold harry helen
    helena henri henry hugo ian irene irène isaac isabel isabella jack jacob jacques james
    jan jane janet jean jennifer jessica joan johann johannes john jonathan jorge josé jose
    joseph juan julia julian julie karl katherine kathleen kenneth kevin laura lawrence
    leonardo linda lisa louis louise lucy ludwig luis margaret maria marie marion mark
    martha martin mary matthew maurice max michael michel michelle mikhail mohammed muhammad
    nancy nathan nicholas nicolas niels nikola oliver olivia oscar otto patricia patrick
    paul paula pedro peter philip philippe pierre rachel ralph raymond rebecca richard
    robert roger ronald rosa rose ruth ryan samuel sandra sarah scott sergei simon sophie
    stephen steven susan thomas timothy tom victor vincent virginia walter wei werner
    william wilhelm wolfgang xavier yuri zoe bronisława bronislawa władysław wladyslaw
    józef jozef kazimierz stanisław stanislaw wojciech ève eve ada alan grace rosalind
    lise enrico galileo johannes isaac marco giuseppe giovanni luigi leo lev ivan pablo
    joe ben jim tim sam sid bob becky tommy billy willy jimmy johnny jenny kate katie betsy
    polly sally molly nelly annie amy tony andy mike dave steve nick rob ron ted ed fred
    greg jeff ken larry gary jerry terry harriet abraham ulysses theodore franklin dwight
    barack hillary elon steve bill warren mark tim satya sundar jeff larry sergey jack
    """
)

# Well-known places, matched against a whole name (lower case, single spaces).
_GAZETTEER = _phrases(
    """
    africa, antarctica, asia, australia, europe, north america, south america, oceania, arctic,
    afghanistan, albania, algeria, argentina, armenia, austria, azerbaijan, bangladesh,
    belarus, belgium, bolivia, bosnia, brazil, bulgaria, cambodia, cameroon, canada, chile,
    china, colombia, croatia, cuba, cyprus, czechia, czech republic, denmark, ecuador, egypt,
    estonia, ethiopia, finland, france, germany, ghana, greece, guatemala, haiti, honduras,
    hungary, iceland, india, indonesia, iran, iraq, ireland, israel, italy, jamaica, japan,
    kazakhstan, kenya, korea, north korea, south korea, kosovo, kuwait, laos, latvia, lebanon,
    libya, lithuania, luxembourg, madagascar, malaysia, mali, malta, mexico, moldova, monaco,
    mongolia, montenegro, morocco, mozambique, myanmar, nepal, netherlands, new zealand,
    nicaragua, niger, nigeria, norway, pakistan, panama, paraguay, peru, philippines, poland,
    portugal, qatar, romania, russia, rwanda, saudi arabia, senegal, serbia, singapore,
    slovakia, slovenia, somalia, south africa, spain, sri lanka, sudan, sweden, switzerland,
    syria, taiwan, tanzania, thailand, tunisia, turkey, uganda, ukraine, united kingdom, united
    states, uruguay, uzbekistan, venezuela, vietnam, yemen, zambia, zimbabwe, england,
    scotland, wales, britain, great britain, prussia, bavaria, siberia, amsterdam, athens,
    bangkok, barcelona, beijing, berlin, bombay, boston, brussels, budapest, buenos aires,
    cairo, calcutta, chicago, copenhagen, delhi, dublin, edinburgh, florence, geneva, hamburg,
    hong kong, istanbul, jakarta, jerusalem, kyiv, kiev, krakow, kraków, lagos, lisbon, london,
    los angeles, lyon, madrid, manchester, marseille, melbourne, mexico city, milan, montreal,
    moscow, mumbai, munich, nairobi, naples, new delhi, new york, new york city, osaka, oslo,
    oxford, cambridge, paris, prague, rio de janeiro, rome, san francisco, santiago, são paulo,
    sao paulo, seoul, shanghai, st petersburg, saint petersburg, stockholm, sydney, tehran,
    tokyo, toronto, vancouver, venice, vienna, warsaw, washington, zurich, california, texas,
    florida, ohio, michigan, illinois, massachusetts, pennsylvania
    """
)
# Abbreviated titles ("Gen. Patton"): like honorifics, a PERSON cue that is not part of the name.
_TITLE_ABBREVIATIONS = _words("gen col capt lt sgt adm gov sen rep pres hon")
_NAME_CUES = _HONORIFICS | _TITLE_ABBREVIATIONS
# A trailing period after these ends the name but not the sentence ("Acme Inc. said").
_CLOSING_ABBREVIATIONS = _words("inc corp ltd co bros jr sr")
_LEGAL_SUFFIXES = _words("inc incorporated corp corporation ltd limited llc plc gmbh co")
# A trailing period after these neither ends the name nor the sentence ("St. Louis").
_OPEN_ABBREVIATIONS = _words("st mt ft")
# A trailing period after these does not end the sentence.
_ABBREVIATIONS = (
    _NAME_CUES
    | _CLOSING_ABBREVIATIONS
    | _OPEN_ABBREVIATIONS
    | _words("vs no approx dept univ assn est fig vol pp ed eds al cf")
)

_KEYWORD_TYPES: dict[str, str] = {
    **{word: "CONCEPT" for word in _CONCEPT_WORDS},
    **{word: "EVENT" for word in _EVENT_WORDS},
    **{word: "LOCATION" for word in _LOCATION_WORDS},
    **{word: "ORGANIZATION" for word in _ORG_WORDS},
}
_TYPE_PRIORITY = {"ORGANIZATION": 4, "LOCATION": 3, "EVENT": 2, "PERSON": 1, "CONCEPT": 0}

# --------------------------------------------------------------------------------------------
# Heuristic extractor: scanning
# --------------------------------------------------------------------------------------------

# Letters that may be capitals (Python checks); listing them lets the regex engine skip text fast.
_UPPERISH = "A-Z\u00c0-\u00de\u0100-\u024f\u0370-\u03ff\u0400-\u042f"
# A capitalised word, a dotted acronym ("U.S."), or an initial; a trailing period is kept so the
# scanner can tell "Dr." and "F." from the end of a sentence.
_CAP = (
    rf"(?:[{_UPPERISH}](?<![\w'\u2019.-].)"
    r"(?:\.(?:[^\W\d_]\.)+|\w*(?:[-'\u2019&]\w+)*\.?))"
)
_FIRST_CONNECTOR = r"(?:of|for|de|da|di|du|des|del|della|la|le|van|von|der|den|ter|y|&)"
_SECOND_CONNECTOR = r"(?:the|la|le|de|der|den|des|du|da|di|y)"
_PARTICLE = r"(?:de|da|di|du|del|della|la|le|van|von|der|den|ter)"
_SEP = r"(?:[^\S\n]+|[^\S\n]*\n[^\S\n]*)"  # blanks with at most one line break
# A run of capitalised words, possibly joined by connectors and opened by particles. Which
# words really form names is decided in Python; the regex only skips the rest of the text.
_CANDIDATE_RE = re.compile(
    rf"{_CAP}(?:{_SEP}(?:\b{_FIRST_CONNECTOR}{_SEP}(?:\b{_SECOND_CONNECTOR}{_SEP})?)?{_CAP})*"
)
# Particles right before a candidate open the name: "de Gaulle".
_PARTICLES_BEFORE_RE = re.compile(rf"(?<![\w'\u2019.-])\b{_PARTICLE}{_SEP}(?:{_PARTICLE}{_SEP})?$")
_PART_RE = re.compile(rf"(?P<cap>{_CAP})|(?P<nl>\n)|(?P<conn>[^\s]+)")
_BOUNDARY_RE = re.compile(r"[.!?\u2026]+(?=[\s\"'\u201d\u2019)\]]|$)|\n[^\S\n]*\n\s*|\n")
_LOWER_WORD_RE = re.compile(r"\b[a-z]+\b")
_WORD_CHAR_RE = re.compile(r"\w")
_SPACE_RE = re.compile(r"\s")
_SHOUT_RE = re.compile(r"[A-Z][A-Z'-]+\s+[A-Z][A-Z'-]+\b")
# Up to this many characters, a lower-case word is looked up by substring search, beyond by a set.
_LOWER_SCAN_LIMIT = 20_000
_NEXT_WORD_RE = re.compile(r"(,?)[^\S\n]*([a-z]+)\b")
_POSSESSIVE_ENDINGS = ("'s", "\u2019s", "'S", "\u2019S")
_CONTRACTIONS = frozenset({"ll", "m", "d", "ve", "re", "t", "s", "em", "n"})
_OPENING_QUOTES = frozenset('"\u201c')
# A line at least this long that ends without punctuation is taken as hard-wrapped prose (the
# next line continues the sentence); shorter lines (headings, list items) end a sentence.
_SOFT_WRAP_MIN_LINE = 60
_MAX_NAME_TOKENS = 8
RELATION_WINDOW = 10
"""Entities of one sentence are related when at most this many other entities apart."""


@dataclass(slots=True)
class _Tok:
    start: int
    end: int
    lower: str  # lower case, periods removed
    acronym: bool = False


@dataclass(slots=True)
class _Mention:
    tokens: list[_Tok]
    cues: dict[str, int]
    truncated: bool = False  # "Warsaw-born" was cut to "Warsaw"
    sentence: int = 0
    initial: bool = False  # the name opens its sentence, line or quotation
    next_word: str = ""  # the lower-case word right after the name, if any
    after_article: bool = False  # "the Milky Way"


def _cue(cues: dict[str, int], type_: str, score: int) -> None:
    if cues.get(type_, 0) < score:
        cues[type_] = score


def _word_before(text: str, end: int) -> str:
    start = end
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    return text[start:end]


class _Scanner:
    """Finds name mentions in a chunk: regexes skip ordinary text, Python judges the names."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.mentions: list[_Mention] = []
        self._lower_words: frozenset[str] | None = None  # built for long texts only
        self.noninitial_caps: set[str] = set()  # capitalised words seen mid-sentence
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
        starts = [0]
        line_start = 0
        for m in _BOUNDARY_RE.finditer(text):
            start, end = m.span()
            first = text[start]
            if first == "\n":
                short = start - line_start < _SOFT_WRAP_MIN_LINE
                line_start = end
                if m.group().count("\n") < 2 and not short:
                    continue  # hard-wrapped prose: the sentence goes on
            elif m.group() == ".":
                word = _word_before(text, start)
                lower = word.lower()
                if lower in _ABBREVIATIONS or (len(word) == 1 and word.isupper()):
                    continue  # "Dr. Curie", "John F. Kennedy", "Acme Inc. said"
            starts.append(end)
        return starts

    def run(self) -> None:
        text = self.text
        stopwords = _STOPWORDS
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
            if not mention.initial:
                self.noninitial_caps.add(first.lower)
            self.noninitial_caps.update(t.lower for t in mention.tokens[1:])
            self._context(mention)

    def _join_and(self) -> None:
        """Join "Securities and Exchange Commission": "and" inside an organisation's name."""
        mentions = self.mentions
        if len(mentions) < 2:
            return
        text = self.text
        joined: list[_Mention] = [mentions[0]]
        for mention in mentions[1:]:
            left = joined[-1]
            gap = text[left.tokens[-1].end : mention.tokens[0].start]
            if (
                gap in (" and ", " & ")
                and not left.cues
                and not mention.cues
                and left.tokens[-1].end - left.tokens[0].start < 80
                and _organisation_head(tuple(t.lower for t in mention.tokens))
                and (
                    not _intrinsic_cues(tuple(t.lower for t in left.tokens), False)
                    or any(t.lower in ("of", "for") for t in left.tokens)
                )
            ):
                amp = _Tok(left.tokens[-1].end + 1, mention.tokens[0].start - 1, gap.strip())
                joined[-1] = _Mention([*left.tokens, amp, *mention.tokens], {}, mention.truncated)
            else:
                joined.append(mention)
        self.mentions = joined

    def _context(self, mention: _Mention) -> None:
        """Cues from the words around a mention."""
        text = self.text
        begin = mention.tokens[0].start
        words = text[max(0, begin - 48) : begin].split()
        p1 = words[-1] if words else ""
        p2 = words[-2] if len(words) >= 2 and p1.isalpha() else ""
        p3 = words[-3] if len(words) >= 3 and p2.isalpha() else ""
        l1, l2 = p1.lower(), p2.lower()
        if p1.isalpha():
            if l1 in _ARTICLES:
                mention.after_article = True
            if l1 in _PERSON_LEADERS:
                _cue(mention.cues, "PERSON", 2)  # 'said Tom'
        if l1 == "the" and p2.isalpha():
            p1, l1, p2, l2 = p2, l2, p3, p3.lower()
        if (
            p1.isalpha()
            and l1 in _LOCATION_PREPOSITIONS
            and not (p2[:1].isupper() and p2.isalpha())  # "Prize in Physics"
            and not (l1 in ("at", "to") and l2 in _AT_VERBS)  # "looked at Tom"
        ):
            _cue(mention.cues, "LOCATION", 1)
        after = _NEXT_WORD_RE.match(text, mention.tokens[-1].end)
        if after is not None:
            word = after.group(2)
            if not after.group(1):
                mention.next_word = word
            if word in _PERSON_FOLLOWERS:
                _cue(mention.cues, "PERSON", 2)

    def _candidate(self, begin: int, end: int) -> None:
        text = self.text
        span = text[begin:end]
        soft: tuple[bool, ...] = ()
        if "\n" in span:  # which line breaks inside the run continue a hard-wrapped sentence
            breaks = [begin + i for i, char in enumerate(span) if char == "\n"]
            soft = tuple(i - text.rfind("\n", 0, i) - 1 >= _SOFT_WRAP_MIN_LINE for i in breaks)
        parse = _parse_candidate if len(span) <= _CACHED_SPAN else _parse_candidate.__wrapped__
        for tokens, person, truncated in parse(span, soft):
            self.mentions.append(
                _Mention(
                    [_Tok(begin + s, begin + e, lower, acronym) for s, e, lower, acronym in tokens],
                    {"PERSON": 3} if person else {},
                    truncated,
                )
            )


_CACHED_SPAN = 200  # longer runs of capitalised words are rare and not worth caching

# (start, end, lower-case form, is an acronym), offsets relative to the candidate run
_TokTuple = tuple[int, int, str, bool]
# (tokens, announced by an honorific, cut from a hyphenated word)
_MentionTemplate = tuple[tuple[_TokTuple, ...], bool, bool]


@functools.lru_cache(maxsize=32768)
def _parse_candidate(span: str, soft: tuple[bool, ...]) -> tuple[_MentionTemplate, ...]:
    """Split a run of capitalised words into name mentions (cached: names repeat a lot).

    ``soft[i]`` tells whether the i-th line break of the run continues the sentence.
    """
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
            if cur or raw in _PARTICLES:
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
        if "-" in raw and not raw.rpartition("-")[2][:1].isupper():
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
        elif cur and not pending and _ROMAN_NUMERAL.match(raw):
            is_name = True  # "World War I"
        elif shouting or (caps and len(raw) > 6):
            flush()  # a heading in capitals
        elif lower in _STOPWORDS and not (acronym and lower in _LOCATION_ACRONYMS):
            flush()
        elif lower in _NAME_CUES and not acronym:
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
                person_like = len(cur) >= 2 and cur[0][2] in _FIRST_NAMES
                if pending[0][2] in ("of", "for") and person_like:
                    joins = False
            if joins:
                cur.extend(pending)
                cur.append(tok)
                pending.clear()
            else:
                particles = [p for p in pending if p[2] in _PARTICLES] if not cur else []
                flush()
                cur = [*particles, tok]
                person = announced
            truncated = cut
            if ends_name:
                flush()
        if period and is_name:
            if not (lower in _OPEN_ABBREVIATIONS or len(raw) == 1):
                flush()  # the end of a sentence, or "Inc.": the name ends
        elif period and not person_next:
            flush()
    flush()
    return tuple(found)


@functools.lru_cache(maxsize=65536)
def _intrinsic_cues(tokens: tuple[str, ...], acronym: bool) -> tuple[tuple[str, int], ...]:
    """Type cues from the name itself (lower-case tokens), strongest first."""
    if " ".join(tokens) in _GAZETTEER:
        return (("LOCATION", 4),)
    if acronym and len(tokens) == 1:
        if tokens[0] in _CONCEPT_ACRONYMS:
            return (("CONCEPT", 4),)
        if tokens[0] in _LOCATION_ACRONYMS:
            return (("LOCATION", 4),)
        return (("ORGANIZATION", 2),)  # NASA, IBM
    # The head is the part before a connector: "University" in "University of Paris".
    head_len = next((i for i, t in enumerate(tokens) if i > 0 and t in _CONNECTORS), len(tokens))
    for score, part in ((4, tokens[:head_len]), (3, tokens[head_len:])):
        for token in reversed(part):
            keyword_type = _KEYWORD_TYPES.get(token)
            if keyword_type is not None:
                return ((keyword_type, score),)
    cues: list[tuple[str, int]] = []
    first = tokens[0]
    if len(tokens) >= 2:
        if first in _TITLES:
            cues.append(("PERSON", 3))  # "Duke of Wellington"
        if first in _LOCATION_LEADS:
            cues.append(("LOCATION", 3))  # "San Francisco", "Fort Worth"
        elif first in _WEAK_LOCATION_LEADS:
            cues.append(("LOCATION", 1))
    if first in _FIRST_NAMES:
        cues.append(("PERSON", 2))
    return tuple(cues)


def _organisation_head(tokens: tuple[str, ...]) -> bool:
    return ("ORGANIZATION", 4) in _intrinsic_cues(tokens, False)


def _has_keyword_type(tokens: Sequence[_Tok]) -> bool:
    key = tuple(t.lower for t in tokens)
    return any(score >= 3 and type_ != "PERSON" for type_, score in _intrinsic_cues(key, False))


def _person_shape(tokens: tuple[str, ...], singles: set[tuple[str, ...]]) -> bool:
    """Whether an otherwise untyped name is shaped like a person's name.

    Either capitalised words around name particles ("Ursula von der Leyen"), or two or three
    plain words whose last word the chunk also uses alone ("Muff Potter" ... "Potter").
    """
    if any(t in _DEMONYMS or len(t) == 1 for t in tokens):
        return False
    inner = tokens[1:-1]
    if any(t in _PARTICLES for t in inner) and all(
        t in _PARTICLES or t not in _CONNECTORS for t in inner
    ):
        return True
    return (
        2 <= len(tokens) <= 3
        and not any(t in _CONNECTORS for t in tokens)
        and (tokens[-1],) in singles
    )


def _best_type(cues: dict[str, int]) -> tuple[str, int]:
    if not cues:
        return "CONCEPT", 0
    type_ = max(cues, key=lambda t: (cues[t], _TYPE_PRIORITY[t]))
    return type_, cues[type_]


class _ChunkAnalysis:
    """Turns a scanned chunk's raw mentions into entities and co-occurrence relations."""

    def __init__(self, text: str) -> None:
        scanner = _Scanner(text)
        scanner.run()
        self.text = text
        self.scanner = scanner

    def _clean(self, mention: _Mention) -> list[_Tok] | None:
        """The mention's name tokens after dropping titles and sentence-initial common words."""
        tokens = mention.tokens
        first = tokens[0].lower
        initial = mention.initial
        if first in _TITLES and not tokens[0].acronym:
            if len(tokens) == 1:
                return None  # "the King"
            if tokens[1].lower not in _CONNECTORS and not _has_keyword_type(tokens[1:]):
                _cue(mention.cues, "PERSON", 3)  # "Queen Victoria" names Victoria
                tokens = tokens[1:]
                first = tokens[0].lower
                initial = False
        if initial and not tokens[0].acronym:
            scanner = self.scanner
            common = first not in scanner.noninitial_caps and scanner.seen_in_lower_case(first)
            if first in _OPENERS and " ".join(t.lower for t in tokens) not in _GAZETTEER:
                common = True
            if len(tokens) == 1:
                if common or mention.truncated:
                    return None
                if first not in _FIRST_NAMES and first not in _GAZETTEER:
                    if len(first) > 4 and first.endswith("ly"):
                        return None  # "Interestingly"
                    if first.endswith("ing") and mention.next_word in _GERUND_FOLLOWERS:
                        return None  # "Building on"
                    if (
                        mention.next_word
                        and first.endswith("s")
                        and not first.endswith(("ss", "us", "is"))
                        and not mention.cues
                        and not _intrinsic_cues((first,), False)
                    ):
                        return None  # "Analysts said", "Shares rose": a plural noun
            elif (common or (len(first) > 4 and first.endswith("ly"))) and (
                first not in _FIRST_NAMES
            ):
                tokens = tokens[1:]  # "Physicist Marie Curie", "Presently Tom"
                while tokens and tokens[0].lower in _CONNECTORS:
                    tokens = tokens[1:]
                if not tokens:
                    return None
        while tokens and tokens[-1].lower in _CONNECTORS:  # never expected; defensive
            tokens = tokens[:-1]
        if not tokens or len(tokens) > _MAX_NAME_TOKENS:
            return None
        if all(len(t.lower) == 1 or t.lower in _CONNECTORS for t in tokens):
            return None  # initials only
        if len(tokens) == 1:
            if tokens[0].lower in _DEMONYMS:
                return None  # "Russian-controlled", "the French"
            if tokens[0].acronym and self.scanner.seen_in_lower_case(tokens[0].lower):
                return None  # "I KNOW": emphasis, not an acronym
            if _ROMAN_NUMERAL.match(self.text[tokens[0].start : tokens[0].end]):
                return None
        return tokens

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
                for type_, score in _intrinsic_cues(key, acronym):
                    _cue(cues, type_, score)
            for type_, score in mention.cues.items():
                _cue(cues, type_, score)
            if mention.after_article:
                after_article.add(name)
            in_sentence = sentences.setdefault(mention.sentence, [])
            if name not in in_sentence:
                in_sentence.append(name)

        types = {name: _best_type(cues) for name, cues in cues_by_name.items()}
        singles: set[tuple[str, ...]] = {k for k in tokens_by_name.values() if len(k) == 1}
        for name, (_type, score) in types.items():
            key = tokens_by_name[name]
            if score == 0 and name not in after_article and _person_shape(key, singles):
                types[name] = ("PERSON", 1)  # "Injun Joe" ... "Joe"
        # "Apple" alone is the company "Apple Inc" of the same chunk.
        companies = {
            key[:-1]
            for name, (type_, _score) in types.items()
            for key in (tokens_by_name[name],)
            if type_ == "ORGANIZATION" and len(key) >= 2 and key[-1] in _LEGAL_SUFFIXES
        }
        # "Curie" alone names the same kind of thing as "Marie Curie" in the same chunk.
        surnames = {
            key[i:]
            for name, (type_, score) in types.items()
            if type_ == "PERSON"
            for key in (tokens_by_name[name],)
            for i in range(1, len(key))
        }
        for name, (_type, score) in types.items():
            key = tokens_by_name[name]
            if score < 3 and key in surnames:
                types[name] = ("PERSON", 3)
            elif score < 3 and key in companies:
                types[name] = ("ORGANIZATION", 3)

        entities = [ExtractedEntity(name, types[name][0]) for name in cues_by_name]
        pairs: set[tuple[str, str]] = set()
        for names in sentences.values():
            for i, a in enumerate(names):
                for b in names[i + 1 : i + 1 + RELATION_WINDOW]:
                    pairs.add((a, b) if a < b else (b, a))
        relations = [ExtractedRelation(a, b, DEFAULT_RELATION_TYPE) for a, b in sorted(pairs)]
        return entities, relations


_INLINE_LIMIT = 64 * 1024  # characters extracted on the event loop without a thread


class HeuristicExtractor:
    """Offline, deterministic extraction from capitalisation and word cues (no model).

    * Names are runs of capitalised words, joined by connectors ("University of Paris",
      "Vincent van Gogh", "Procter & Gamble", "Securities and Exchange Commission"), plus
      acronyms (NASA, U.S.) and initials ("John F. Kennedy"). Possessives ('s), honorifics
      (Dr., Madame) and leading articles are not part of a name; titles ("Queen Victoria") are
      dropped when they announce a person; "Warsaw-born" yields "Warsaw"; contractions
      ("I'll"), nationality words alone ("Russian") and runs of words in capitals (headings)
      are no names.
    * Capitalised function words, pronouns, months and number words never start a name. A
      capitalised word opening a sentence, a short line or a quotation is dropped when it is a
      common opener ("Say", "Chief"), when the chunk also uses it in lower case (and never
      capitalised mid-sentence), or when it looks like an adverb ("Interestingly"), a gerund
      ("Building on") or a plural noun ("Analysts said").
    * Types: a small gazetteer and name keywords (University, Institute, Inc → ORGANIZATION;
      City, River, Island → LOCATION; War, Revolution → EVENT; Prize, Theory, Physics →
      CONCEPT) beat honorifics and titles (PERSON), which beat known first names, acronyms
      (ORGANIZATION) and "said/who" around a name (PERSON), which beat "in/at/from/near" before
      it (LOCATION). Within a chunk, a trailing part of a PERSON's name ("Curie" after "Marie
      Curie") is a PERSON and the name before "Inc" ("Apple" after "Apple Inc") an
      ORGANIZATION; two or three plain words whose last word is also used alone ("Muff Potter"
      ... "Potter") or names with particles ("Ursula von der Leyen") are PERSONs. Else CONCEPT.
    * Relations: entities of the same sentence, at most :data:`RELATION_WINDOW` entities
      apart, are ``RELATED_TO`` each other once per chunk, source < target by name.

    Entities are listed in order of first mention; relations sorted. Each chunk is judged on
    its own text only. Regexes skip ordinary text, so the cost is linear (about 1 s per MB of
    name-dense prose on one core); batches above 64 KB run in a thread.
    """

    name = "heuristic"

    async def extract(self, chunks: Sequence[ChunkInput]) -> list[ChunkExtraction]:
        if sum(len(chunk.text) for chunk in chunks) < _INLINE_LIMIT:
            return [self.extract_one(chunk) for chunk in chunks]
        # CPU-bound: a thread keeps the event loop (heartbeats, other activities) responsive.
        return await asyncio.to_thread(lambda: [self.extract_one(chunk) for chunk in chunks])

    def extract_one(self, chunk: ChunkInput) -> ChunkExtraction:
        entities, relations = _ChunkAnalysis(chunk.text).result()
        return ChunkExtraction(chunk.chunk_id, entities, relations)


# --------------------------------------------------------------------------------------------
# LLM extractor
# --------------------------------------------------------------------------------------------

_SYSTEM_PROMPT = f"""\
You extract a knowledge graph from one passage of a document.

Entities: the named things the passage mentions. For each give
- "name": the fullest name used in the passage, exactly as written (no titles such as Dr.);
- "type": one of {", ".join(ENTITY_TYPES)}: PERSON for people, ORGANIZATION for companies,
  institutions, agencies and groups, LOCATION for places, EVENT for named events, CONCEPT for
  anything else worth a node (awards, theories, substances, works, products, fields);
- "description": one short sentence about the entity based only on the passage, or null.

Relations: facts the passage states between two of your entities. For each give
- "source" and "target": names exactly as in your entity list;
- "type": a short UPPER_SNAKE_CASE verb phrase, e.g. WORKED_AT, BORN_IN, MARRIED_TO, FOUNDED,
  PART_OF, LOCATED_IN, AWARDED, DISCOVERED; use {DEFAULT_RELATION_TYPE} when nothing fits.

Extract only what the passage supports. Reply with the JSON object only."""

_ENTITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "type": {"type": "string", "enum": list(ENTITY_TYPES)},
        "description": {"type": ["string", "null"]},
    },
    "required": ["name", "type", "description"],
    "additionalProperties": False,
}
_RELATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "source": {"type": "string"},
        "target": {"type": "string"},
        "type": {"type": "string"},
    },
    "required": ["source", "target", "type"],
    "additionalProperties": False,
}
EXTRACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "entities": {"type": "array", "items": _ENTITY_SCHEMA},
        "relations": {"type": "array", "items": _RELATION_SCHEMA},
    },
    "required": ["entities", "relations"],
    "additionalProperties": False,
}
"""The JSON schema the model's reply must follow (OpenAI structured outputs, strict mode)."""

RESPONSE_FORMAT: ResponseFormatJSONSchema = {
    "type": "json_schema",
    "json_schema": {"name": "extraction", "strict": True, "schema": EXTRACTION_SCHEMA},
}

_MAX_NAME_LENGTH = 200
_RELATION_TYPE_JUNK = re.compile(r"[^0-9A-Z]+")
_CODE_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.DOTALL)
_RETRYABLE_STATUS = frozenset({408, 409, 429})


class _ReplyEntity(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    type: str = "CONCEPT"
    description: str | None = None


class _ReplyRelation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    source: str
    target: str
    type: str = DEFAULT_RELATION_TYPE


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore")
    entities: list[_ReplyEntity]
    relations: list[_ReplyRelation] = []


def _fold(name: str) -> str:
    return " ".join(name.split()).casefold()


def _relation_type(raw: str) -> str:
    cleaned = _RELATION_TYPE_JUNK.sub("_", raw.strip().upper()).strip("_")
    return cleaned[:64] or DEFAULT_RELATION_TYPE


def _validation_summary(error: ValidationError, limit: int = 3) -> str:
    parts = []
    for item in error.errors()[:limit]:
        where = ".".join(str(part) for part in item["loc"]) or "reply"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def parse_reply(chunk_id: str, content: str) -> ChunkExtraction:
    """Validate and clean one model reply; raises a retryable ExtractionError when malformed."""
    text = content.strip()
    fenced = _CODE_FENCE.match(text)  # some local models wrap JSON in a code fence
    if fenced:
        text = fenced.group(1).strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExtractionError(
            f"chunk {chunk_id}: the model's reply is not JSON ({exc.msg} at char {exc.pos} "
            f"of {len(text)})",
            retryable=True,
            chunk_id=chunk_id,
        ) from None
    try:
        reply = _Reply.model_validate(data)
    except ValidationError as exc:
        raise ExtractionError(
            f"chunk {chunk_id}: the model's reply does not match the extraction schema: "
            f"{_validation_summary(exc)}",
            retryable=True,
            chunk_id=chunk_id,
        ) from None

    entities: list[ExtractedEntity] = []
    by_folded: dict[str, str] = {}
    for item in reply.entities:
        name = " ".join(item.name.split())
        if not name or len(name) > _MAX_NAME_LENGTH or _fold(name) in by_folded:
            continue
        type_ = item.type.strip().upper()
        description = " ".join((item.description or "").split()) or None
        entities.append(
            ExtractedEntity(name, type_ if type_ in ENTITY_TYPES else "CONCEPT", description)
        )
        by_folded[_fold(name)] = name
    relations: list[ExtractedRelation] = []
    seen: set[tuple[str, str, str]] = set()
    for rel in reply.relations:
        source = by_folded.get(_fold(rel.source))
        target = by_folded.get(_fold(rel.target))
        if source is None or target is None or source == target:
            continue  # endpoints must be entities of this chunk
        key = (source, target, _relation_type(rel.type))
        if key not in seen:
            seen.add(key)
            relations.append(ExtractedRelation(*key))
    return ChunkExtraction(chunk_id, entities, relations)


def _api_error(chunk_id: str, exc: openai.OpenAIError) -> ExtractionError:
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status >= 500 or status in _RETRYABLE_STATUS
        detail = f"HTTP {status}: {_short(exc.message)}"
    elif isinstance(exc, openai.APIConnectionError):
        retryable = True
        detail = _short(str(exc)) or type(exc).__name__
    elif isinstance(exc, openai.APIResponseValidationError):
        retryable = True
        detail = "the response did not look like a chat completion"
    else:
        retryable = False
        detail = _short(str(exc)) or type(exc).__name__
    return ExtractionError(
        f"chunk {chunk_id}: chat completion failed: {detail}",
        retryable=retryable,
        chunk_id=chunk_id,
    )


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class _LoopSemaphore:
    """A semaphore per event loop (asyncio primitives must not cross loops)."""

    size: int
    _by_loop: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]] = field(
        default_factory=dict
    )

    def get(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        entry = self._by_loop.get(id(loop))
        if entry is None or entry[0] is not loop:
            for key, (other, _) in list(self._by_loop.items()):
                if other.is_closed():
                    del self._by_loop[key]
            entry = (loop, asyncio.Semaphore(self.size))
            self._by_loop[id(loop)] = entry
        return entry[1]


class LlmExtractor:
    """Extraction by any OpenAI-compatible chat completions endpoint with a JSON schema.

    One request per chunk, at most ``max_concurrency`` in flight per extractor (shared by
    concurrent ``extract`` calls); results come back in input order. The first chunk that
    fails fails the call and cancels the requests still pending. The SDK retries transient
    HTTP failures itself (configure ``max_retries`` on the client); what still fails becomes an
    :class:`ExtractionError`, retryable for timeouts, connection errors, 408/409/429 and 5xx
    and for malformed replies, not for other 4xx (authentication, bad request, unknown model).
    ``temperature`` is sent only when given: some models accept only their default.
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        *,
        max_concurrency: int = 4,
        temperature: float | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.client = client
        self.model = model
        self.name = f"llm:{model}"
        self.max_concurrency = max_concurrency
        self.temperature = temperature
        self._semaphore = _LoopSemaphore(max_concurrency)

    async def extract(self, chunks: Sequence[ChunkInput]) -> list[ChunkExtraction]:
        if not chunks:
            return []
        semaphore = self._semaphore.get()
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._extract_one(c, semaphore)) for c in chunks]
        except BaseExceptionGroup as group_error:
            failures = _leaves(group_error)
            extraction_errors = [e for e in failures if isinstance(e, ExtractionError)]
            if len(extraction_errors) == len(failures):
                # Usually one: the first failure cancels the rest. If several, prefer a
                # permanent one: retrying the batch cannot fix it.
                permanent = [e for e in extraction_errors if not e.retryable]
                chosen = (permanent or extraction_errors)[0]
                raise chosen from chosen.__cause__
            raise
        return [task.result() for task in tasks]

    async def _extract_one(
        self, chunk: ChunkInput, semaphore: asyncio.Semaphore
    ) -> ChunkExtraction:
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": _SYSTEM_PROMPT},
            {"role": "user", "content": chunk.text},
        ]
        async with semaphore:
            try:
                if self.temperature is None:
                    completion = await self.client.chat.completions.create(
                        model=self.model, messages=messages, response_format=RESPONSE_FORMAT
                    )
                else:
                    completion = await self.client.chat.completions.create(
                        model=self.model,
                        messages=messages,
                        response_format=RESPONSE_FORMAT,
                        temperature=self.temperature,
                    )
            except openai.OpenAIError as exc:
                raise _api_error(chunk.chunk_id, exc) from exc
        if not completion.choices:
            raise ExtractionError(
                f"chunk {chunk.chunk_id}: the model returned no choices",
                retryable=True,
                chunk_id=chunk.chunk_id,
            )
        choice = completion.choices[0]
        message = choice.message
        if message.refusal:
            raise ExtractionError(
                f"chunk {chunk.chunk_id}: the model refused: {_short(message.refusal, 200)}",
                retryable=False,
                chunk_id=chunk.chunk_id,
            )
        if choice.finish_reason == "length":
            raise ExtractionError(
                f"chunk {chunk.chunk_id}: the model's reply was cut off at its token limit",
                retryable=True,
                chunk_id=chunk.chunk_id,
            )
        if not message.content:
            raise ExtractionError(
                f"chunk {chunk.chunk_id}: the model's reply is empty",
                retryable=True,
                chunk_id=chunk.chunk_id,
            )
        return parse_reply(chunk.chunk_id, message.content)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            leaves.extend(_leaves(exc))
        else:
            leaves.append(exc)
    return leaves
