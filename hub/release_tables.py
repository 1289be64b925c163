"""The edge software releases the hub holds (issue 17): each version's signed manifest; the
wheels themselves lie in ``[releases] directory``/<version>/. Reached through hub.db."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, LargeBinary, String, Table

from hub.schema import metadata

releases = Table(
    "releases",
    metadata,
    Column("version", String(64), primary_key=True),
    #: The manifest as sealed by the release key (hafen.releases), served to doors as is.
    Column("manifest", LargeBinary, nullable=False),
    Column("files", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    #: A rollback: the only version it may be installed over.
    Column("rollback_from", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
