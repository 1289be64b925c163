"""The compressed bodies of many access-list messages that carry mostly the same entries.

A plan that gains 250 sites sends each of them a delta with the same thousands of members.
Made into JSON and deflated one message at a time, that cost about 30 ms a site: most of the
time such a change took to reach the doors. ``SharedEncoder`` makes each entry into JSON once
and deflates each run of ``BLOCK`` entries once, then joins each message's compressed runs.
Deflate data flushed to a byte boundary may be followed by data deflated from a fresh window
(parallel compressors such as pigz rely on it), so each body is an ordinary zlib stream of
exactly the JSON that ``model_dump_json(exclude_none=True)`` gives: doors and
``hafen.protocol.read_acl_body`` read it as any other.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from pydantic import BaseModel

from hafen.acl import AccessList, AccessListDelta

#: Entries deflated together: big enough to compress about as well as the whole list (a run
#: of members is some 40 KB of JSON), small enough that a site whose list differs in one
#: member still shares the other runs.
BLOCK = 256
#: What the arrays of entries look like in a message's JSON when they are left empty.
_EMPTY_ARRAYS = '"members":[],"cards":[]'
_ZLIB_HEADER = b"\x78\xda"  # deflate, 32 KB window, best compression
_LAST_BLOCK = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()  # an empty final block


class SharedEncoder:
    """Encodes the bodies of one batch of messages, sharing the work of their common entries.

    It keeps the entries it has seen (by identity: the compiler shares one object among all
    the lists that hold the same entry), so it lives as long as one batch.
    """

    def __init__(self) -> None:
        self._json: dict[int, tuple[BaseModel, bytes]] = {}
        self._runs: dict[tuple[int, ...], tuple[bytes, bytes]] = {}

    def body(self, doc: AccessList | AccessListDelta) -> bytes:
        """The zlib-compressed JSON of ``doc``, as ``hafen.protocol.acl_body`` makes it."""
        bare = doc.model_copy(update={"members": [], "cards": []})
        head, tail = bare.model_dump_json(exclude_none=True).split(_EMPTY_ARRAYS)
        stream = _Stream()
        stream.add(f'{head}"members":['.encode())
        self._add_runs(stream, doc.members)
        stream.add(b'],"cards":[')
        self._add_runs(stream, doc.cards)
        stream.add(f"]{tail}".encode())
        return stream.finish()

    def _add_runs(self, stream: _Stream, entries: Sequence[BaseModel]) -> None:
        for start in range(0, len(entries), BLOCK):
            run = entries[start : start + BLOCK]
            key = (start == 0, *map(id, run))
            done = self._runs.get(key)
            if done is None:
                text = b",".join(map(self._entry_json, run))
                text = text if start == 0 else b"," + text
                done = self._runs[key] = (text, _deflate(text))
            stream.add_deflated(*done)

    def _entry_json(self, entry: BaseModel) -> bytes:
        made = self._json.get(id(entry))
        if made is None:  # the entry is kept with its JSON: its id names no other meanwhile
            text = entry.model_dump_json(exclude_none=True).encode()
            made = self._json[id(entry)] = (entry, text)
        return made[1]


class _Stream:
    """A zlib stream assembled from separately deflated pieces."""

    def __init__(self) -> None:
        self._parts = [_ZLIB_HEADER]
        self._checksum = zlib.adler32(b"")

    def add(self, text: bytes) -> None:
        self.add_deflated(text, _deflate(text))

    def add_deflated(self, text: bytes, deflated: bytes) -> None:
        self._parts.append(deflated)
        self._checksum = zlib.adler32(text, self._checksum)

    def finish(self) -> bytes:
        return b"".join([*self._parts, _LAST_BLOCK, self._checksum.to_bytes(4, "big")])


def _deflate(text: bytes) -> bytes:
    """Raw deflate data of ``text`` from a fresh window, ended on a byte boundary and not
    marked last, so that more may follow."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return deflater.compress(text) + deflater.flush(zlib.Z_SYNC_FLUSH)
