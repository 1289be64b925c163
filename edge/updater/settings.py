"""``[updates]`` in the door's config: where releases come from, who signs them, where they go.

```toml
[updates]
hub_url = "https://hub.example.org"      # releases come from the hub, never the internet
hub_ca_file = "/etc/hafen/hub-ca.crt"    # only if the hub's HTTPS certificate is your own CA's
release_keys = ["Q2s5…="]                # `hafen hub release key`: not the keys that sign lists
root = "/opt/hafen/edge"                 # releases/<version>/, current, previous: the agent's
gate_seconds = 60                        # how long a new version has to pass its health gate
```

Without the section the door takes no updates (and says so to an order).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from hafen.config import PublicKeyText, Section, is_loopback

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class UpdatesSettings(Section):
    """How this door updates its software (edge.updater)."""

    hub_url: str
    hub_ca_file: Path | None = None
    release_keys: list[PublicKeyText] = Field(min_length=1, max_length=8)
    root: Path = Path("/opt/hafen/edge")
    gate_seconds: Annotated[float, Field(ge=5, le=900)] = 60.0

    @field_validator("hub_url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{value[:80]!r} is not the hub's URL (such as https://hub.example.org)"
            )
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError("releases come over https://, or http:// to this machine only")
        return value.rstrip("/")

    def trusted(self) -> list[Ed25519PublicKey]:
        from hafen.signing import public_key_from_text

        return [public_key_from_text(text) for text in self.release_keys]
