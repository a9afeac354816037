"""ADBC's Flight SQL driver against Floe.

Usage: adbc_suite.py URI DEMO_ROWS. Prints "adbc suite: ok"; any failure raises.
"""
import sys

import adbc_driver_flightsql.dbapi as flightsql
import pyarrow as pa

uri, demo_rows = sys.argv[1], int(sys.argv[2])

with flightsql.connect(uri) as conn:
    with conn.cursor() as cur:
        # DBAPI query.
        cur.execute("SELECT count(*) AS n FROM demo.trips")
        assert cur.fetchone()[0] == demo_rows
        # Bulk result as Arrow.
        cur.execute("SELECT trip_id, fare FROM demo.trips")
        table = cur.fetch_arrow_table()
        assert table.num_rows == demo_rows, table.num_rows
        assert table.schema.field("trip_id").type == pa.int64()
        # Prepared statement with parameters.
        cur.execute("SELECT zone_id, borough FROM demo.zones WHERE zone_id = $1", parameters=(42,))
        assert cur.fetchone()[0] == 42
        cur.execute("SELECT zone_id FROM demo.zones WHERE zone_id = ?", parameters=(7,))
        assert cur.fetchone()[0] == 7
        # Errors come back as DBAPI errors with Floe's message.
        try:
            cur.execute("SELECT * FROM demo.nowhere")
            cur.fetchall()
        except flightsql.Error as e:
            assert "nowhere" in str(e), e
        else:
            raise AssertionError("a missing table did not fail")
    # Catalog metadata.
    objects = conn.adbc_get_objects(depth="tables", catalog_filter="lake").read_all().to_pylist()
    names = {
        (schema["db_schema_name"], table["table_name"])
        for catalog in objects
        for schema in catalog["catalog_db_schemas"] or []
        for table in schema["db_schema_tables"] or []
    }
    assert ("demo", "trips") in names and ("demo", "zones") in names, names
    schema = conn.adbc_get_table_schema("zones", catalog_filter="lake", db_schema_filter="demo")
    assert "zone_id" in schema.names, schema

print("adbc suite: ok")
