"""What the sample set's knowledge base is made of: kinds and their attributes, word lists, the
syllables names are built from, and the question/answer/passage templates (sample_templates.txt).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Final, Literal

Kind = Literal["city", "company", "person", "product", "river", "book"]
KINDS: Final[tuple[Kind, ...]] = ("city", "company", "person", "product", "river", "book")
NumberStyle = Literal["count", "year", "price", "kg", "km", "pages"]


@dataclass(frozen=True)
class Number:
    """A numeric fact drawn from [low, high]; siblings get a nearby value."""

    low: float
    high: float
    style: NumberStyle


@dataclass(frozen=True)
class Choice:
    """A categorical fact; siblings often share it."""

    options: tuple[str, ...]


@dataclass(frozen=True)
class Ref:
    """A fact naming another entity (a company's headquarters is a city), enabling hops."""

    kind: Kind


ValueSpec = Number | Choice | Ref


def _words(text: str) -> tuple[str, ...]:
    """A word list written as one ``;``-separated string, to keep the vocabulary compact."""
    return tuple(word.strip() for word in text.split(";"))


COUNTRIES: Final = _words(
    "Ostrand; Valdoria; Kesmark; Norvhal; Elbany; Tirvald; Quessa; Drovnia; Halvardy; Merrowan; "
    "Zelandor; Pellucia"
)
SOURCES: Final = _words(
    "the Karvel Mountains; Lake Ostin; the Dunmere Hills; the Sarrow Glacier; "
    "the Ibrel Highlands; Lake Varn; the Tolmark Range; the Esker Plateau"
)
MOUTHS: Final = _words(
    "the Tessarine Sea; the Gulf of Orvane; Mirrow Bay; the Northern Ocean; the Calder Sea; "
    "Lake Umbra; the Strait of Pelle; the Sunken Sound"
)
CLIMATES: Final = _words(
    "temperate; arid; humid subtropical; alpine; Mediterranean; oceanic; continental; "
    "semi-arid; tropical; subarctic"
)
OCCUPATIONS: Final = _words(
    "an architect; a violinist; a marine biologist; a novelist; a civil engineer; a chef; "
    "a photographer; a historian; a cartographer; a surgeon; a painter; a physicist; "
    "a journalist; a sculptor; a diplomat"
)
ACHIEVEMENTS: Final = _words(
    "designing floating bridges; a series of award-winning essays; "
    "pioneering tidal energy research; mapping the northern glaciers; restoring medieval organs; "
    "founding a network of night schools; record-breaking balloon flights; "
    "a landmark study of river ecology; inventing a folding bicycle gear; "
    "translating ancient poetry; a famous televised chess match; "
    "discovering a new species of moth; reviving a lost weaving technique; "
    "a decade-long polar expedition"
)
GENRES: Final = _words(
    "science fiction; historical fiction; crime; fantasy; romance; literary fiction; adventure; "
    "mystery; horror; satire"
)

SCHEMA: Final[dict[Kind, dict[str, ValueSpec]]] = {
    "city": {
        "population": Number(20_000, 3_000_000, "count"),
        "country": Choice(COUNTRIES),
        "founded": Number(1150, 1900, "year"),
        "mayor": Ref("person"),
        "river": Ref("river"),
        "climate": Choice(CLIMATES),
    },
    "company": {
        "founder": Ref("person"),
        "headquarters": Ref("city"),
        "founded": Number(1850, 2018, "year"),
        "ceo": Ref("person"),
        "employees": Number(40, 250_000, "count"),
        "product": Ref("product"),
    },
    "person": {
        "birthplace": Ref("city"),
        "occupation": Choice(OCCUPATIONS),
        "birth_year": Number(1935, 2001, "year"),
        "employer": Ref("company"),
        "known_for": Choice(ACHIEVEMENTS),
    },
    "product": {
        "maker": Ref("company"),
        "price": Number(19, 2_500, "price"),
        "weight": Number(0.1, 25.0, "kg"),
        "release_year": Number(1996, 2024, "year"),
        "warranty": Choice(_words("one-year; two-year; three-year; five-year; lifetime")),
    },
    "river": {
        "length": Number(40, 3_200, "km"),
        "source": Choice(SOURCES),
        "mouth": Choice(MOUTHS),
        "country": Choice(COUNTRIES),
        "largest_city": Ref("city"),
    },
    "book": {
        "author": Ref("person"),
        "published": Number(1850, 2023, "year"),
        "pages": Number(90, 1_100, "pages"),
        "genre": Choice(GENRES),
        "setting": Ref("city"),
    },
}

_SINGLE_ONSETS: Final = "b; d; f; g; k; l; m; n; p; r; s; t; v; z"
ONSETS: Final = _words(f"{_SINGLE_ONSETS}; {_SINGLE_ONSETS}; br; dr; gr; kr; tr; st; th; sk")
VOWELS: Final = _words("a; a; e; e; i; o; o; u")
CODAS: Final = _words(";;; n; r; l; s; m; rn; ld; th")
LOOKALIKE: Final = dict(zip("bvdtgkpmnszflr", "vbtdkgbnmzsvrl", strict=True))
COMPANY_SUFFIXES: Final = _words(
    "Industries; Systems; Labs; Holdings; Group; Works; Dynamics; Foods; Motors; Analytics"
)
MODELS: Final = _words("X2; X3; Pro; Mini; 300; 500; Air; Max; Neo; S")
FIRST_NAMES: Final = {
    "she": _words("Ilsa; Maren; Tove; Liora; Anouk; Sela; Irina; Nadia; Elin; Vera; Odile; Runa"),
    "he": _words("Anders; Tomas; Bram; Emil; Joren; Kasimir; Lev; Oren; Piet; Rafael; Teodor"),
}
TITLE_ADJECTIVES: Final = _words(
    "Glass; Silent; Hollow; Amber; Crimson; Winter; Broken; Hidden; Iron; Paper; Salt; Velvet; "
    "Ashen; Golden; Quiet; Distant; Burning; Frozen; Last; Secret"
)
TITLE_NOUNS: Final = _words(
    "Orchard; Harbor; Lantern; Cartographer; Tide; Crown; Meridian; Archive; Compass; Orchestra; "
    "Lighthouse; Almanac; Ferry; Labyrinth; Monastery; Vineyard; Observatory; Sparrow; Tapestry; "
    "Carousel"
)
PRONOUNS: Final = {
    "it": {"subj": "it", "obj": "it", "poss": "its"},
    "she": {"subj": "she", "obj": "her", "poss": "her"},
    "he": {"subj": "he", "obj": "him", "poss": "his"},
}


@dataclass(frozen=True)
class Texts:
    """Templates of one attribute: passages, short answers, questions naming the entity,
    follow-up questions that do not (pronoun or ellipsis), and a role noun for hops."""

    passages: tuple[str, ...]
    answers: tuple[str, ...]
    named: tuple[str, ...]
    followups: tuple[str, ...]
    role: str = ""


def texts_for(kind: Kind, attribute: str) -> Texts:
    """The question, answer and passage templates of one attribute."""
    return _parse_texts()[f"{kind}.{attribute}"]


@cache
def _parse_texts() -> dict[str, Texts]:
    """Parse ``sample_templates.txt`` once: a section per ``kind.attribute``, a line each."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    text = files("prime_model.data").joinpath("sample_templates.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {k: [] for k in "PANFR"})
        else:
            current[line[0]].append(line[2:])
    return {
        key: Texts(
            tuple(parts["P"]),
            tuple(parts["A"]),
            tuple(parts["N"]),
            tuple(parts["F"]),
            parts["R"][0] if parts["R"] else "",
        )
        for key, parts in sections.items()
    }
