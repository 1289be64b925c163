"""A service's words that a page can say in its visitor's language: a message as its English
text with ``%(name)s`` places, marked for the catalogue with ``N_``, and the values that fill
them. The API says them in English (``str(error)``); a page translates the text and every
value that is itself ``Words`` (a part of the day, a weekday), and writes dates its
language's way (hub.web.i18n).

The services import no translation machinery: ``N_`` only marks a text for ``make messages``
(Babel extracts it as it does ``_``), and saying the words in a language is a ``Language``
the page hands in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date


def N_(text: str) -> str:
    """Mark ``text`` for the catalogue; it is translated when said (``Words.say``)."""
    return text


@dataclass(frozen=True)
class Month:
    """A month as a value of a message ("December 2026"), named in the page's language."""

    first: date


@dataclass(frozen=True)
class Language:
    """How to say words: the catalogue's ``gettext`` and how a day and a month are written."""

    gettext: Callable[[str], str]
    day: Callable[[date], str]
    month: Callable[[date], str]


#: The API's words: English as written, days as ISO dates.
ENGLISH = Language(
    gettext=lambda text: text,
    day=date.isoformat,
    month=lambda first: f"{first:%B %Y}",
)


@dataclass(frozen=True)
class Words:
    """A text with ``%(name)s`` places and their values (``values`` as given: str, int,
    ``date``, ``Month``, ``Words``, or a ``Joined`` list of them)."""

    text: str
    values: Mapping[str, Value] = field(default_factory=dict)

    def say(self, language: Language = ENGLISH) -> str:
        translated = language.gettext(self.text)
        if not self.values:
            return translated
        return translated % {name: said(v, language) for name, v in self.values.items()}

    def __str__(self) -> str:
        return self.say()


def words(text: str, **values: Value) -> Words:
    """``Words(text, values)`` with the values as keywords."""
    return Words(text, values)


@dataclass(frozen=True)
class Joined:
    """Values said one after another with ``separator`` between them ("Mon–Fri, Sun")."""

    items: Sequence[Value]
    separator: str = ", "


Value = str | int | float | date | Month | Words | Joined


def said(value: Value, language: Language = ENGLISH) -> str:
    """One value of a message in ``language``."""
    if isinstance(value, Words):
        return value.say(language)
    if isinstance(value, Joined):
        return value.separator.join(said(item, language) for item in value.items)
    if isinstance(value, Month):
        return language.month(value.first)
    if isinstance(value, date):
        return language.day(value)
    return str(value)
