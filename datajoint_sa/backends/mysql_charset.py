"""Converting a MySQL/MariaDB database's character set in place (latin1 -> utf8mb4 and back).

Lab databases of the 0.14 era are latin1; converting them is `ALTER TABLE ... CONVERT TO
CHARACTER SET` per table and `ALTER DATABASE` for the default. MySQL commits each ALTER at
once, so everything that could make the conversion lose or refuse data is checked first,
for every table, before anything changes:

- every text value survives the round trip (`CONVERT(CONVERT(v USING new) USING old)`
  equals `v` byte for byte): a value with no counterpart in the new set would become "?";
- no index grows beyond InnoDB's 3072 bytes (a character takes up to 4 bytes in utf8mb4);
- no unique key gets duplicates under the new collation (`a` and `A` under a `_ci` one).

The first problem found is reported with its table, column, key and the row's key values.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection as SAConnection

#: InnoDB's largest index (DYNAMIC / COMPRESSED row formats, the default since 5.7 / 10.2)
MAX_INDEX_BYTES = 3072
TEXT_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set")


def _rows(conn: SAConnection, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sa.text(sql), params).mappings()]


def text_columns(conn: SAConnection, schema: str, charset: str) -> list[dict[str, Any]]:
    """Text columns of the database's tables that are not in `charset` yet."""
    return _rows(conn, """
        SELECT c.TABLE_NAME AS t, c.COLUMN_NAME AS c, c.CHARACTER_SET_NAME AS cs,
               c.CHARACTER_MAXIMUM_LENGTH AS len, c.DATA_TYPE AS type
        FROM information_schema.COLUMNS c JOIN information_schema.TABLES t
          ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
        WHERE c.TABLE_SCHEMA = :s AND t.TABLE_TYPE = 'BASE TABLE'
          AND c.CHARACTER_SET_NAME IS NOT NULL AND c.CHARACTER_SET_NAME <> :cs
        ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION""", s=schema, cs=charset)


def tables_to_convert(conn: SAConnection, schema: str, charset: str) -> list[str]:
    """Base tables whose default or any column is in another character set."""
    found = _rows(conn, """
        SELECT t.TABLE_NAME AS t FROM information_schema.TABLES t
        JOIN information_schema.COLLATIONS k ON k.COLLATION_NAME = t.TABLE_COLLATION
        WHERE t.TABLE_SCHEMA = :s AND t.TABLE_TYPE = 'BASE TABLE'
          AND k.CHARACTER_SET_NAME <> :cs ORDER BY t.TABLE_NAME""", s=schema, cs=charset)
    names = [r["t"] for r in found]
    names += [c["t"] for c in text_columns(conn, schema, charset) if c["t"] not in names]
    return sorted(set(names))


def _key(conn: SAConnection, schema: str, table: str) -> list[str]:
    return sa.inspect(conn).get_pk_constraint(table, schema=schema)["constrained_columns"]


def problem(conn: SAConnection, schema: str, charset: str, collation: str) -> str | None:
    """The first reason the conversion would lose or refuse data, or None."""
    quote = conn.dialect.identifier_preparer.quote
    columns = text_columns(conn, schema, charset)
    converted = {(c["t"], c["c"]) for c in columns}
    for column in columns:
        table, name, old = column["t"], column["c"], column["cs"]
        key = _key(conn, schema, table)
        shown = ", ".join(quote(k) for k in key) or quote(name)
        value = quote(name)
        sql = (f"SELECT {shown}, {value} AS v FROM {quote(schema)}.{quote(table)} "
               f"WHERE {value} IS NOT NULL AND CAST(CONVERT(CONVERT({value} USING {charset}) "
               f"USING {old}) AS BINARY) <> CAST({value} AS BINARY) LIMIT 1")
        bad = _rows(conn, sql)
        if bad:
            row = bad[0]
            where = ", ".join(f"{k}={row[k]!r}" for k in key)
            return (f"{schema}.{table}.{name} holds a value that {charset} cannot hold "
                    f"({row['v']!r}, in the row with key {where or 'none'}): it would become "
                    "'?'")
    maxlen = {r["n"]: int(r["m"]) for r in _rows(
        conn, "SELECT CHARACTER_SET_NAME AS n, MAXLEN AS m FROM information_schema.CHARACTER_SETS")}
    indexes = _rows(conn, """
        SELECT s.TABLE_NAME AS t, s.INDEX_NAME AS i, s.COLUMN_NAME AS c, s.SUB_PART AS sub,
               s.NON_UNIQUE AS non_unique, c.CHARACTER_MAXIMUM_LENGTH AS len,
               c.CHARACTER_OCTET_LENGTH AS octets, c.DATA_TYPE AS type
        FROM information_schema.STATISTICS s JOIN information_schema.COLUMNS c
          ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME
         AND c.COLUMN_NAME = s.COLUMN_NAME
        WHERE s.TABLE_SCHEMA = :s ORDER BY s.TABLE_NAME, s.INDEX_NAME, s.SEQ_IN_INDEX""",
        s=schema)
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for part in indexes:
        grouped.setdefault((part["t"], part["i"]), []).append(part)
    for (table, index), parts in grouped.items():
        if not any((table, p["c"]) in converted for p in parts):
            continue
        size = 0
        for p in parts:
            if (table, p["c"]) in converted:
                size += int(p["sub"] or p["len"] or 0) * maxlen.get(charset, 4)
            elif p["octets"] is not None:
                size += int(p["sub"] or 0) * 4 if p["sub"] else int(p["octets"])
            else:
                size += 8
        name = "the primary key" if index == "PRIMARY" else f"key {index}"
        if size > MAX_INDEX_BYTES:
            return (f"{name} of {schema}.{table} ({', '.join(p['c'] for p in parts)}) would "
                    f"take {size} bytes in {charset}, more than the {MAX_INDEX_BYTES} an index "
                    "may hold")
        if not int(parts[0]["non_unique"]):
            cols = ", ".join(f"CONVERT({quote(p['c'])} USING {charset}) COLLATE {collation}"
                             if (table, p["c"]) in converted else quote(p["c"]) for p in parts)
            dup = _rows(conn, f"SELECT COUNT(*) AS n FROM {quote(schema)}.{quote(table)} "
                              f"GROUP BY {cols} HAVING COUNT(*) > 1 LIMIT 1")
            if dup:
                return (f"{name} of {schema}.{table} ({', '.join(p['c'] for p in parts)}) "
                        f"would hold duplicates under {collation}")
    for fk in text_foreign_keys(conn, schema):
        if fk["s"] != schema:
            return (f"{fk['s']}.{fk['t']} refers to {schema}.{fk['pt']} through text columns "
                    f"({', '.join(fk['columns'])}): convert {fk['s']} as well, first")
    return None


def text_foreign_keys(conn: SAConnection, schema: str) -> list[dict[str, Any]]:
    """Foreign keys over text columns that touch the database (child or parent in it), one
    entry per constraint with its columns in order."""
    rows = _rows(conn, """
        SELECT k.CONSTRAINT_SCHEMA AS s, k.CONSTRAINT_NAME AS name, k.TABLE_NAME AS t,
               k.COLUMN_NAME AS c, k.REFERENCED_TABLE_SCHEMA AS ps,
               k.REFERENCED_TABLE_NAME AS pt, k.REFERENCED_COLUMN_NAME AS pc,
               r.UPDATE_RULE AS on_update, r.DELETE_RULE AS on_delete
        FROM information_schema.KEY_COLUMN_USAGE k
        JOIN information_schema.REFERENTIAL_CONSTRAINTS r
          ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
         AND r.TABLE_NAME = k.TABLE_NAME
        WHERE (k.TABLE_SCHEMA = :s OR k.REFERENCED_TABLE_SCHEMA = :s)
          AND k.REFERENCED_TABLE_NAME IS NOT NULL
        ORDER BY k.CONSTRAINT_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION""",
        s=schema)
    text = {(c["t"], c["c"]) for c in _rows(conn, """
        SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = :s AND CHARACTER_SET_NAME IS NOT NULL""", s=schema)}
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        entry = found.setdefault((row["s"], row["t"], row["name"]), dict(
            row, columns=[], parent_columns=[], text=False))
        entry["columns"].append(row["c"])
        entry["parent_columns"].append(row["pc"])
        if (row["ps"] == schema and (row["pt"], row["pc"]) in text) or (
                row["s"] == schema and (row["t"], row["c"]) in text):
            entry["text"] = True
    return [fk for fk in found.values() if fk["text"]]


def convert(conn: SAConnection, schema: str, charset: str, collation: str) -> list[str]:
    """Convert the tables, their columns and the database default; returns the tables.
    MariaDB refuses to change a column under a foreign key even with the checks off, so the
    foreign keys over text columns step aside meanwhile and come back as they were."""
    quote = conn.dialect.identifier_preparer.quote
    tables = tables_to_convert(conn, schema, charset)
    fks = text_foreign_keys(conn, schema)
    conn.execute(sa.text("SET SESSION foreign_key_checks = 0"))
    dropped: list[dict[str, Any]] = []
    try:
        for fk in fks:
            conn.execute(sa.text(f"ALTER TABLE {quote(fk['s'])}.{quote(fk['t'])} "
                                 f"DROP FOREIGN KEY {quote(fk['name'])}"))
            dropped.append(fk)
        for table in tables:
            conn.execute(sa.text(f"ALTER TABLE {quote(schema)}.{quote(table)} CONVERT TO "
                                 f"CHARACTER SET {charset} COLLATE {collation}"))
        conn.execute(sa.text(f"ALTER DATABASE {quote(schema)} CHARACTER SET {charset} "
                             f"COLLATE {collation}"))
    finally:
        try:
            for fk in dropped:
                columns = ", ".join(quote(c) for c in fk["columns"])
                parents = ", ".join(quote(c) for c in fk["parent_columns"])
                conn.execute(sa.text(
                    f"ALTER TABLE {quote(fk['s'])}.{quote(fk['t'])} ADD CONSTRAINT "
                    f"{quote(fk['name'])} FOREIGN KEY ({columns}) REFERENCES "
                    f"{quote(fk['ps'])}.{quote(fk['pt'])} ({parents}) "
                    f"ON UPDATE {fk['on_update']} ON DELETE {fk['on_delete']}"))
        finally:
            conn.execute(sa.text("SET SESSION foreign_key_checks = 1"))
    return tables


def current(conn: SAConnection, schema: str) -> tuple[str, str]:
    """(character set, collation) of the database's default."""
    row = _rows(conn, """SELECT DEFAULT_CHARACTER_SET_NAME AS cs, DEFAULT_COLLATION_NAME AS co
                         FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :s""", s=schema)
    return (row[0]["cs"], row[0]["co"]) if row else ("", "")
