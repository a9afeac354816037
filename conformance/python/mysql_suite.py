"""MySQL connectors against Floe: PyMySQL and mysql-connector-python.

Usage: mysql_suite.py HOST PORT. Prints "<driver>: ok" per driver; any failure
raises, which the Rust test reports with this output.
"""
import datetime
import decimal
import sys

host, port = sys.argv[1], int(sys.argv[2])


def check(driver, connect, errors, prepared_cursor):
    conn = connect()
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM demo.zones")
    assert cur.fetchone()[0] == 263
    cur.execute(
        "SELECT CAST(3 AS BIGINT) AS i, CAST(2.5 AS DOUBLE) AS f, CAST(1.25 AS DECIMAL(6,2)) AS d, "
        "'héllo' AS s, CAST('2024-02-29' AS DATE) AS dt, "
        "CAST('2024-02-29 13:14:15' AS TIMESTAMP) AS ts, NULL AS n"
    )
    row = cur.fetchone()
    assert row[0] == 3, row
    assert row[1] == 2.5, row
    assert row[2] == decimal.Decimal("1.25"), row
    assert row[3] == "héllo", row
    assert row[4] == datetime.date(2024, 2, 29), row
    assert row[5] == datetime.datetime(2024, 2, 29, 13, 14, 15), row
    assert row[6] is None, row
    assert [d[0] for d in cur.description] == ["i", "f", "d", "s", "dt", "ts", "n"]
    # Parameters: client-side interpolation (PyMySQL) or server-side (connector).
    cur = prepared_cursor(conn)
    cur.execute("SELECT zone_id, borough FROM demo.zones WHERE zone_id = %s", (42,))
    assert cur.fetchone()[0] == 42
    cur.execute("SELECT %s, %s", ("it's", None))
    assert cur.fetchone() == ("it's", None)
    # Errors carry MySQL's codes, and the connection survives them.
    cur = conn.cursor()
    for sql, code in [
        ("SELEC 1", 1064),
        ("SELECT * FROM demo.nowhere", 1146),
        ("SELECT nowhere FROM demo.zones", 1054),
    ]:
        try:
            cur.execute(sql)
        except errors as e:
            assert e.args[0] == code or getattr(e, "errno", None) == code, (sql, e.args)
        else:
            raise AssertionError(f"{sql} did not fail")
    cur.execute("SELECT 1")
    assert cur.fetchone()[0] == 1
    # A large result, read as it arrives.
    cur.execute("SELECT trip_id FROM demo.trips LIMIT 10000")
    assert len(cur.fetchall()) == 10000
    conn.close()
    print(f"{driver}: ok")


import pymysql  # noqa: E402

check(
    "pymysql",
    lambda: pymysql.connect(host=host, port=port, user="floe", password=""),
    pymysql.err.MySQLError,
    lambda conn: conn.cursor(),
)

import mysql.connector  # noqa: E402

check(
    "mysql.connector",
    lambda: mysql.connector.connect(
        host=host, port=port, user="floe", password="", use_pure=True, ssl_disabled=True
    ),
    mysql.connector.Error,
    lambda conn: conn.cursor(prepared=True),
)
