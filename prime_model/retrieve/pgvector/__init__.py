"""The corpus in PostgreSQL + pgvector, for when it outgrows one machine's embedded index.

:class:`~prime_model.retrieve.index.RetrievalIndex` keeps every vector in the serving process;
a server lets many replicas share one corpus, hold more than one machine's RAM and swap it in
one transaction. :func:`export_index` (:mod:`.export`) builds the new table inside a single
transaction and renames it over the old one, so a reader sees the old corpus or the whole new
one, never a half-filled table. The table's COMMENT (renamed with it, so it cannot drift from the
rows) holds the encoder name and dim (:mod:`.connection`), so :meth:`PgVectorIndex.connect`
(:mod:`.index`) refuses a mismatch at start-up instead of serving wrong hits. psycopg is optional
(the ``pgvector`` extra): without it this package still imports and says what to install, and
nothing else in ``prime_model`` imports it.
"""

from prime_model.retrieve.pgvector.connection import (
    DEFAULT_TABLE,
    FORMAT,
    FORMAT_VERSION,
    check_table_name,
    describe_dsn,
)
from prime_model.retrieve.pgvector.export import export_index
from prime_model.retrieve.pgvector.index import KIND, MAX_EF_SEARCH, PgVectorIndex

__all__ = [
    "DEFAULT_TABLE",
    "FORMAT",
    "FORMAT_VERSION",
    "KIND",
    "MAX_EF_SEARCH",
    "PgVectorIndex",
    "check_table_name",
    "describe_dsn",
    "export_index",
]
