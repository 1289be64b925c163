"""The edge software releases the hub holds (issue 17): each version's signed manifest; the
wheels themselves lie in ``[releases] directory``/<version>/. Reached through hub.db."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
)

from hub.schema import metadata

releases = Table(
    "releases",
    metadata,
    Column("version", String(64), primary_key=True),
    #: The manifest as sealed by the release key (hafen.releases), served to doors as is.
    Column("manifest", LargeBinary, nullable=False),
    Column("files", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: The signed rollbacks made from a release: its manifest signed again with
#: ``rollback_from``, the one version a door may run to install it over (a door refuses an
#: older version otherwise). Same files, kept once under the release's directory.
release_rollbacks = Table(
    "release_rollbacks",
    metadata,
    Column("version", String(64), ForeignKey("releases.version"), primary_key=True),
    Column("rollback_from", String(64), primary_key=True),
    #: The rollback's manifest as sealed by the release key, served to the doors on
    #: ``rollback_from`` that a rollback rollout ordered back to ``version``.
    Column("manifest", LargeBinary, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
