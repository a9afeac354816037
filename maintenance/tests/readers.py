"""Reads an Iceberg table with independent readers and prints what they see.

Used by the maintenance tests: after every operation the table must read the
same through pyiceberg (by its catalog: SQL or Glue) and through DuckDB's
iceberg extension (by its current metadata file, local or on S3) as through
Floe.

    readers.py CATALOG_NAME READERS_JSON NAMESPACE.TABLE METADATA_JSON

READERS_JSON is {"pyiceberg": <load_catalog properties, or type "static" to
read the metadata file with the other properties as file IO's>, "duckdb_s3":
null | {"endpoint", "key_id", "secret", "region"}}.

Prints one JSON object: {"pyiceberg": {...}, "duckdb": {...}} with, per
reader, the row count and the checksum columns the Rust side computes too:
sum(id), sum(value), sum(id * value), sum(length(category)).
"""

import json
import os
import sys


def pyiceberg_read(name, properties, table, metadata):
    if properties.get("type") == "static":
        # No catalog pyiceberg can reach: read the current metadata file.
        from pyiceberg.table import StaticTable

        props = {k: v for k, v in properties.items() if k != "type"}
        loaded = StaticTable.from_metadata(metadata, properties=props)
    else:
        from pyiceberg.catalog import load_catalog

        loaded = load_catalog(name, **properties).load_table(table)
    arrow = loaded.scan().to_arrow()
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


def duckdb_read(metadata, s3):
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
    if s3 is not None:
        import duckdb_extension_httpfs

        con.execute(f"LOAD '{extension(duckdb_extension_httpfs, 'httpfs')}'")
        # CREATE SECRET takes no parameters; the values are the test's own.
        con.execute(
            f"CREATE SECRET floe_s3 (TYPE S3, KEY_ID '{s3['key_id']}', SECRET '{s3['secret']}', "
            f"REGION '{s3['region']}', ENDPOINT '{s3['endpoint']}', URL_STYLE 'path', USE_SSL false)"
        )
    if metadata.startswith("file://"):
        metadata = metadata[len("file://"):]
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
    name, readers, table, metadata = sys.argv[1:5]
    readers = json.loads(readers)
    print(
        json.dumps(
            {
                "pyiceberg": pyiceberg_read(name, readers["pyiceberg"], table, metadata),
                "duckdb": duckdb_read(metadata, readers["duckdb_s3"]),
            }
        )
    )


if __name__ == "__main__":
    main()
