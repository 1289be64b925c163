"""Where a place someone names is (a postcode, a town), without asking any service outside
the hub: from a gazetteer the operator loads, and from the network's own sites' addresses.

The gazetteer is a GeoNames postal-code dump (https://download.geonames.org/export/zip/, e.g.
DE.txt): tab-separated country, postal code, place name, three admin levels (name and code),
latitude, longitude and accuracy. It is read once, when the hub starts, and bounded in size.

Names are compared folded: case, accents and the German umlauts' two spellings (Görlitz and
Goerlitz) do not matter, nor do punctuation and spacing. A name that many postcodes share
(a city) is the mean of their coordinates; where several places share a name, the one with
the most postcodes is meant (Leipzig the city, not a hamlet called Leipzig), and the answer
names its region so that the member sees which one was taken.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: The largest gazetteer file read, and the most rows it may hold: one country's dump (DE.txt
#: has about 23,000 rows) many times over, far below the whole world's (1.6 million).
MAX_GAZETTEER_BYTES = 64 << 20
MAX_GAZETTEER_ROWS = 300_000
#: The longest place name or postcode a caller may give.
MAX_QUERY = 100
#: Problems a refused gazetteer names at most (the rest are counted).
MAX_PROBLEMS = 5
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_NOT_WORD = re.compile(r"[\W_]+")
_POSTCODE = re.compile(r"\b\d{4,5}\b")


class GazetteerError(ValueError):
    """A gazetteer file that cannot be read as a GeoNames postal-code dump; says where."""


@dataclass(frozen=True)
class Place:
    """A named point: what a postcode or a town was read as."""

    name: str
    latitude: float
    longitude: float


def fold(text: str) -> str:
    """A name as compared: lower case, umlauts spelled out, other accents dropped, words
    separated by single spaces."""
    text = unicodedata.normalize("NFC", text).casefold().translate(_UMLAUTS)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _NOT_WORD.sub(" ", text).strip()


@dataclass
class _Points:
    """The rows that share one key, summed up for their mean."""

    name: str
    latitude: float = 0.0
    longitude: float = 0.0
    rows: int = 0

    def add(self, latitude: float, longitude: float) -> None:
        self.latitude += latitude
        self.longitude += longitude
        self.rows += 1

    def place(self) -> Place:
        return Place(self.name, self.latitude / self.rows, self.longitude / self.rows)


@dataclass
class Gazetteer:
    """Places by folded postcode and by folded name."""

    postcodes: dict[str, Place] = field(default_factory=dict)
    names: dict[str, Place] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.postcodes) + len(self.names)

    def find(self, query: str) -> Place | None:
        """The place ``query`` names: a postcode in it, else the whole as a town's name."""
        folded = fold(query)
        for code in _POSTCODE.findall(folded):
            if code in self.postcodes:
                return self.postcodes[code]
        if folded in self.postcodes:  # postcodes of other shapes (NL 1011 AB, UK ...)
            return self.postcodes[folded]
        without_digits = " ".join(w for w in folded.split() if not w.isdigit())
        return self.names.get(folded) or self.names.get(without_digits)

    def near_misses(self, query: str, n: int = 3) -> list[str]:
        """Names (or postcodes) close to ``query``, as they are shown. Only keys that begin
        as the query does are compared: difflib over every name of a country is too slow
        for an answer to a typo."""
        folded = fold(query)
        if not folded:
            return []
        index = self.postcodes if folded[0].isdigit() else self.names
        start = folded[:2] if folded[0].isdigit() else folded[0]
        keys = [k for k in index if k.startswith(start)]
        return [index[k].name for k in difflib.get_close_matches(folded, keys, n=n, cutoff=0.7)]


def _merge(groups: dict[str, dict[str, _Points]]) -> dict[str, Place]:
    """Per key, the group with the most rows (a city over a hamlet of the same name)."""
    return {
        key: max(by_region.values(), key=lambda points: points.rows).place()
        for key, by_region in groups.items()
    }


def load_gazetteer(path: Path) -> Gazetteer:
    """Read a GeoNames postal-code dump; GazetteerError names the first bad lines."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise GazetteerError(f"{path}: no such file") from None
    except OSError as exc:
        raise GazetteerError(f"{path}: cannot read: {exc.strerror}") from None
    if size > MAX_GAZETTEER_BYTES:
        raise GazetteerError(
            f"{path}: {size:,} bytes, more than {MAX_GAZETTEER_BYTES >> 20} MiB: load the"
            " countries the network is in (e.g. DE.txt), not the whole world"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise GazetteerError(f"{path}: not UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise GazetteerError(f"{path}: cannot read: {exc.strerror}") from None
    return read_gazetteer(text.splitlines(), str(path))


def read_gazetteer(lines: Iterable[str], source: str) -> Gazetteer:
    """The gazetteer in ``lines`` (a GeoNames postal-code dump); GazetteerError names the
    first bad lines of ``source``."""
    postcodes: dict[str, dict[str, _Points]] = {}
    names: dict[str, dict[str, _Points]] = {}
    problems: list[str] = []
    rows = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        rows += 1
        if rows > MAX_GAZETTEER_ROWS:
            raise GazetteerError(
                f"{source}: more than {MAX_GAZETTEER_ROWS:,} places: load the countries the"
                " network is in (e.g. DE.txt), not the whole world"
            )
        parts = line.split("\t")
        try:
            country, code, name, latitude, longitude = _fields(parts)
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
            continue
        # The admin levels tell apart places of one name; the finest one named is shown.
        region = "\t".join(part.strip() for part in parts[3:9])
        shown = next((parts[i].strip() for i in (7, 5, 3) if parts[i].strip()), "")
        folded_code = fold(code).replace(" ", "")
        if folded_code:
            postcodes.setdefault(folded_code, {}).setdefault(
                country, _Points(f"{code} {name}")
            ).add(latitude, longitude)
        if fold(name):
            names.setdefault(fold(name), {}).setdefault(
                f"{country}\t{region}", _Points(f"{name} ({shown})" if shown else name)
            ).add(latitude, longitude)
    if problems:
        more = len(problems) - MAX_PROBLEMS
        shown = "; ".join(problems[:MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
        raise GazetteerError(
            f"{source}: not a GeoNames postal-code dump (country, postal code, place name,"
            f" admin names and codes, latitude, longitude, accuracy; tab-separated): {shown}"
        )
    return Gazetteer(_merge(postcodes), _merge(names))


def _fields(parts: list[str]) -> tuple[str, str, str, float, float]:
    """Country, postal code, place name, latitude and longitude of a row."""
    if len(parts) < 11:
        raise ValueError(f"{len(parts)} tab-separated fields, not 12")
    country, code, name = parts[0].strip(), parts[1].strip(), parts[2].strip()
    if not code and not name:
        raise ValueError("neither a postal code nor a place name")
    if len(code) > MAX_QUERY or len(name) > MAX_QUERY:
        raise ValueError(f"a postal code or name longer than {MAX_QUERY} characters")
    return country, code, name, _coordinate(parts[9], 90), _coordinate(parts[10], 180)


def _coordinate(text: str, bound: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text[:20]!r} is not a latitude or longitude") from None
    if not math.isfinite(value) or abs(value) > bound:
        raise ValueError(f"{text[:20]!r} is beyond ±{bound:g}°")
    return value


def sites_gazetteer(sites: Iterable[tuple[str | None, float | None, float | None]]) -> Gazetteer:
    """The places the network's own sites' addresses name: each postcode in an address, and
    the town after it (else the address's last part), at the site's coordinates (the mean
    of the sites that share one)."""
    postcodes: dict[str, dict[str, _Points]] = {}
    names: dict[str, dict[str, _Points]] = {}
    for address, latitude, longitude in sites:
        if not address or latitude is None or longitude is None:
            continue
        parts = [p.strip() for p in address.split(",") if p.strip()]
        town = parts[-1] if parts else ""
        for part in parts:
            found = _POSTCODE.search(part)
            if found:
                postcodes.setdefault(found.group(), {}).setdefault("", _Points(part)).add(
                    latitude, longitude
                )
                town = part[found.end() :].strip() or town
        if fold(town) and not fold(town).isdigit():
            names.setdefault(fold(town), {}).setdefault("", _Points(town)).add(latitude, longitude)
    return Gazetteer(_merge(postcodes), _merge(names))
