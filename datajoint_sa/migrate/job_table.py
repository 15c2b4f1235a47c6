"""Bring a schema's job table (`~jobs`) of an older layout up to the current one.

Job tables written by the first version of this package and by DataJoint 0.14 lack the
columns of the queue (`pending` status, `priority`, `attempts`, `heartbeat`), and their key
hashes are md5 of the key's values only. The table holds reservations and errors, nothing a
pipeline's results depend on, but its error rows are what keeps a failed key from being
computed again and again: so the layout is migrated in place through the same Alembic
comparison as any table (columns added, the status check widened), and every row that
stores its key is re-hashed the current way. A row without a stored key keeps its hash
(`JobTable.check_stored` treats it as an older writer's row).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .plan import apply, produce
from .scope import Scope

if TYPE_CHECKING:
    from ..connection import Connection


def upgrade_job_table(connection: Connection, sa_table: sa.Table, schema_name: str,
                      key_codec: Any, key_hash: Any) -> None:
    """Migrate the stored job table to `sa_table`'s layout.

    `key_codec` decodes the stored `key` blob and `key_hash` computes the current hash (both
    from `jobs`, passed in so this room does not import the tables room)."""
    scope = Scope(connection.backend_impl, [schema_name], [sa_table.metadata])
    with connection.session(write=False) as sa_conn:
        scope.default_schema = sa_conn.dialect.default_schema_name
    scope.only = {scope.key(sa_table.schema, sa_table.name)}
    upgrade = produce(connection, scope)
    if upgrade.ops:
        apply(connection, scope, upgrade)
    _rehash(connection, sa_table, key_codec, key_hash)


def _rehash(connection: Connection, table: sa.Table, key_codec: Any, key_hash: Any) -> None:
    """Re-hash every row that stores its key; a row whose new hash is taken is a duplicate
    of that row (the same key under both hashes) and is removed."""
    c = table.c
    with connection.session(write=True) as sa_conn:
        rows = sa_conn.execute(sa.select(c.table_name, c.key_hash, c.key).where(
            c.key.is_not(None))).all()
        taken = {(r.table_name, r.key_hash) for r in rows}
        for row in rows:
            try:
                new = key_hash(key_codec.decode(row.key))
            except Exception:  # a key this package cannot read: left as an old writer's row
                continue
            if new == row.key_hash:
                continue
            where = (c.table_name == row.table_name) & (c.key_hash == row.key_hash)
            if (row.table_name, new) in taken:
                sa_conn.execute(sa.delete(table).where(where))
            else:
                sa_conn.execute(sa.update(table).where(where).values(key_hash=new))
                taken.add((row.table_name, new))
            taken.discard((row.table_name, row.key_hash))
