"""What every table of the hub's store shares: the metadata they belong to, and the column
types that differ between SQLite and PostgreSQL.

Apart from hub.db so that the tables can live in more than one module (hub.usage_tables)
without importing each other in a circle.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Integer, MetaData
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

#: 64-bit ids on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-numbered rowid.
BigId = BigInteger().with_variant(Integer, "sqlite")
#: JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
Json = JSON().with_variant(JSONB, "postgresql")
