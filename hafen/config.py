"""Loading TOML config files into pydantic models, with errors that name the key and the reason.

A config may also come in layers (a file, then environment variables, then command-line flags):
``read_toml`` and ``environment_layer`` give each layer as a plain mapping, ``validate_config``
checks each one on its own (so an error names where it came from), and ``merge_layers`` lays
them over each other for the final validation.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import re
import tomllib
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

M = TypeVar("M", bound=BaseModel)


#: Keys whose values an error message must never repeat.
SECRET_KEYS = frozenset({"hash_key", "uid", "hash", "password", "token", "secret"})


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def known_zone(name: str) -> str:
    """An IANA time zone name, checked against the list rather than by opening a file named
    after the input (which fails in other ways for over-long or odd names)."""
    if name not in _zone_names():
        raise ValueError(f"unknown time zone {name[:80]!r}, use an IANA name such as Europe/Berlin")
    return name


#: A site's time zone, by its IANA name; both the edge's config and the hub's API take it.
TimeZoneName = Annotated[str, AfterValidator(known_zone)]


def _public_key(text: str) -> str:
    from hafen.signing import public_key_from_text  # cryptography only when a key is read

    public_key_from_text(text)
    return text


#: An Ed25519 public key as `hafen hub keygen` and `hafen hub release key` print it.
PublicKeyText = Annotated[str, AfterValidator(_public_key)]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine (``localhost`` or a loopback address): the only
    place plain http is taken for what must come over https."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConfigError(Exception):
    """A config file is missing, unreadable or invalid; the message names each bad key."""


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def load_toml_config(path: Path, model: type[M]) -> M:
    """Read ``path`` as TOML and validate it against ``model``."""
    return validate_config(read_toml(path), model, source=str(path))


def read_toml(path: Path) -> dict[str, Any]:
    """Read ``path`` as TOML into a mapping, unvalidated; a ConfigError says why it cannot be."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


#: Spells a key's path for a message: ``door.strike.pin`` in a file, an environment
#: variable's or a flag's name in those layers.
Speller = Callable[[Sequence[str]], str]


def validate_config(
    raw: object,
    model: type[M],
    source: str = "config",
    *,
    context: dict[str, Any] | None = None,
    spell: Speller | None = None,
) -> M:
    """Validate an already parsed mapping, turning pydantic's errors into a ConfigError.

    ``context`` goes to the model's validators (e.g. to be stricter with a file than with a
    flag); ``spell`` names keys the way the user wrote them, if not as a dotted path.
    """
    try:
        return model.model_validate(raw, context=context)
    except ValidationError as exc:
        lines = [_describe(error, model, spell) for error in exc.errors()]
        raise ConfigError(f"{source}: invalid config\n" + "\n".join(lines)) from None


def _describe(error: ErrorDetails, model: type[BaseModel], spell: Speller | None = None) -> str:
    path = [str(part) for part in error["loc"]]
    key = (spell(path) if spell and path else ".".join(path)) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"  {key}: unknown key{_suggestion(error['loc'], model, spell)}"
    if error["type"] == "missing":
        return f"  {key}: required key is missing"
    reason = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, dict | list) or SECRET_KEYS & set(path):
        return f"  {key}: {reason}"  # never echo secrets, or whole sections that may hold them
    if isinstance(value, str):
        value = mask_credentials(value)
    return f"  {key}: {reason} (got {value!r})"


#: ``scheme://user:password@host``, also mistyped (``scheme:user:password@host``) or with a
#: space or an unescaped ``@`` in it: from the first ``:`` after the scheme's to the last ``@``
#: (masking too much of a value is safe, too little is not).
_URL_PASSWORD = re.compile(r"(:/*[^:/@]*:).*@", re.DOTALL)
#: ``?password=...`` and its kin in a URL's query (libpq and many drivers take them there).
_QUERY_SECRET = re.compile(
    r"([?&](?:password|passwd|pwd|secret|token|api_key|apikey|sslpassword)=)[^&#'\"]*",
    re.IGNORECASE,
)


def mask_credentials(text: str) -> str:
    """``text`` with the secrets of any URL in it masked: the password between ``:`` and ``@``
    and secret parameters of its query (``?password=...``)."""
    return _QUERY_SECRET.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


def _suggestion(
    loc: tuple[int | str, ...], model: type[BaseModel], spell: Speller | None = None
) -> str:
    """Name the closest known key, walking the model along the path of the unknown one."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue  # an entry of a list of sections: the list's field named the section
        field = current.model_fields.get(str(part)) if current else None
        annotation = field.annotation if field else None
        current = _model_in(annotation)
    if current is None:
        return ""
    close = closest(str(loc[-1]), current.model_fields)
    if close is None:
        return ""
    name = spell([*map(str, loc[:-1]), close]) if spell else close
    return f" (did you mean {name!r}?)"


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known name most like ``word`` (a typo's likely meaning), or None if none is close."""
    close = difflib.get_close_matches(word, list(known), n=1)
    return close[0] if close else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean 'name'?)`` for the known name most like ``word``, or nothing: the tail
    of every "no such name" error, as unknown keys have it."""
    close = closest(word, known)
    return f" (did you mean {close!r}?)" if close is not None else ""


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found:
            return found
    return None


def environment_layer(environ: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """The settings that environment variables named ``PREFIX__SECTION__KEY`` give, nested as
    a TOML file would be (``HAFEN_HUB__STORE__URL`` is ``[store] url``). Names are matched
    without regard to case; an empty variable counts as unset."""
    start = prefix.upper() + "__"
    layer: dict[str, Any] = {}
    for name in sorted(environ):
        value = environ[name]
        if not name.upper().startswith(start) or value == "":
            continue
        *sections, key = name[len(start) :].lower().split("__")
        table = layer
        for part in sections:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{name}: {part} is set on its own and as a section")
        if isinstance(table.get(key), dict):
            raise ConfigError(f"{name}: {key} is a section; set one of its keys")
        table[key] = value
    return layer


def environment_speller(prefix: str) -> Speller:
    """Spell a key's path as the environment variable that sets it."""
    return lambda path: "__".join([prefix.upper(), *(part.upper() for part in path)])


def merge_layers(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Lay each mapping over the ones before it, section by section; the last layer wins."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
                merged[key] = merge_layers(merged[key], value)
            else:
                merged[key] = merge_layers(value) if isinstance(value, Mapping) else value
    return merged
