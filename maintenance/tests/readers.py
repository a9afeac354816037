"""Reads an Iceberg table with independent readers and prints what they see.

Used by the maintenance tests: after every operation the table must read the
same through pyiceberg (by its SQL catalog) and through DuckDB's iceberg
extension (by its current metadata file) as through Floe.

    readers.py CATALOG_DB CATALOG_NAME WAREHOUSE NAMESPACE.TABLE METADATA_JSON

Prints one JSON object: {"pyiceberg": {...}, "duckdb": {...}} with, per
reader, the row count and the checksum columns the Rust side computes too:
sum(id), sum(value), sum(id * value), sum(length(category)).
"""

import json
import os
import sys


def pyiceberg_read(db, name, warehouse, table):
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(name, uri=f"sqlite:///{db}", warehouse=f"file://{warehouse}")
    arrow = catalog.load_table(table).scan().to_arrow()
    ids = arrow.column("id").to_pylist()
    values = arrow.column("value").to_pylist()
    categories = arrow.column("category").to_pylist()
    return {
        "rows": arrow.num_rows,
        "sum_id": sum(ids),
        "sum_value": sum(values),
        "sum_product": sum(i * v for i, v in zip(ids, values)),
        "sum_length": sum(len(c) for c in categories),
    }


def duckdb_read(metadata):
    import duckdb
    import duckdb_extension_avro
    import duckdb_extension_iceberg

    def extension(module, name):
        base = os.path.join(os.path.dirname(module.__file__), "extensions")
        version = sorted(os.listdir(base))[-1]
        return os.path.join(base, version, f"{name}.duckdb_extension")

    con = duckdb.connect(
        config={"allow_unsigned_extensions": "true", "autoinstall_known_extensions": "false"}
    )
    con.execute(f"LOAD '{extension(duckdb_extension_avro, 'avro')}'")
    con.execute(f"LOAD '{extension(duckdb_extension_iceberg, 'iceberg')}'")
    row = con.execute(
        "SELECT count(*), sum(id), sum(value), sum(id * value), sum(length(category)) "
        f"FROM iceberg_scan('{metadata}')"
    ).fetchone()
    return {
        "rows": row[0],
        "sum_id": int(row[1] or 0),
        "sum_value": int(row[2] or 0),
        "sum_product": int(row[3] or 0),
        "sum_length": int(row[4] or 0),
    }


def main():
    db, name, warehouse, table, metadata = sys.argv[1:6]
    print(
        json.dumps(
            {
                "pyiceberg": pyiceberg_read(db, name, warehouse, table),
                "duckdb": duckdb_read(metadata),
            }
        )
    )


if __name__ == "__main__":
    main()
