"""Loading TOML config files into pydantic models, with errors that name the key and the reason."""

from __future__ import annotations

import difflib
import functools
import tomllib
import zoneinfo
from pathlib import Path
from typing import Annotated, TypeVar

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


class ConfigError(Exception):
    """A config file is missing, unreadable or invalid; the message names each bad key."""


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def load_toml_config(path: Path, model: type[M]) -> M:
    """Read ``path`` as TOML and validate it against ``model``."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return validate_config(raw, model, source=str(path))


def validate_config(raw: object, model: type[M], source: str = "config") -> M:
    """Validate an already parsed mapping, turning pydantic's errors into a ConfigError."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = [_describe(error, model) for error in exc.errors()]
        raise ConfigError(f"{source}: invalid config\n" + "\n".join(lines)) from None


def _describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"  {key}: unknown key{_suggestion(error['loc'], model)}"
    if error["type"] == "missing":
        return f"  {key}: required key is missing"
    reason = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, dict | list) or SECRET_KEYS & {str(part) for part in error["loc"]}:
        return f"  {key}: {reason}"  # never echo secrets, or whole sections that may hold them
    return f"  {key}: {reason} (got {value!r})"


def _suggestion(loc: tuple[int | str, ...], model: type[BaseModel]) -> str:
    """Name the closest known key, walking the model along the path of the unknown one."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part)) if current else None
        annotation = field.annotation if field else None
        current = _model_in(annotation)
    if current is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(current.model_fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found:
            return found
    return None
