"""MySQL connectors reading a MySQL engine through Floe: PyMySQL (text rows,
EOF packets) and mysql-connector-python (text and prepared, binary rows).

Usage: mysql_engine_suite.py FLOE_HOST FLOE_PORT SERVER_HOST SERVER_PORT
SERVER_USER DATABASE. Each query runs on the server directly and through Floe,
whose `mysql` engine is that server; rows and column descriptions must be the
same. Prints "<driver>: ok" per driver; any failure raises.
"""
import sys

floe_host, floe_port = sys.argv[1], int(sys.argv[2])
host, port, user, db = sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]

# Every column type a text result carries as the server wrote it.
TEXT_QUERIES = [
    ("SELECT * FROM {db}.pass_py ORDER BY id", ()),
    ("SELECT id, name FROM {db}.pass_py WHERE id = %s", (1,)),
    ("SELECT seq, seq * 2 FROM {db}.seq_1_to_20000", ()),
]
# Binary rows pass through where Floe describes the columns as the server
# lays them out (signed integers, decimals, strings, dates, floats).
PREPARED_QUERIES = [
    ("SELECT id, name, price, at, d, f, b FROM {db}.pass_py ORDER BY id", ()),
    ("SELECT id, name FROM {db}.pass_py WHERE id = %s OR name = %s", (2, "héllo")),
]


def compare(driver, connect, cursor, queries, errors):
    server = connect(host, port, user)
    floe = connect(floe_host, floe_port, "floe")
    for sql, params in queries:
        sql = sql.format(db=db)
        direct = cursor(server)
        direct.execute(sql, params)
        expected = direct.fetchall()
        expected_columns = [d[:2] for d in direct.description]
        through = cursor(floe)
        through.execute(sql, params)
        got = through.fetchall()
        got_columns = [d[:2] for d in through.description]
        assert got == expected, (driver, sql, got[:3], expected[:3])
        assert got_columns == expected_columns, (driver, sql, got_columns, expected_columns)
    try:
        cursor(floe).execute(f"SELECT nowhere FROM {db}.pass_py")
    except errors as e:
        assert e.args[0] == 1054 or getattr(e, "errno", None) == 1054, e.args
    else:
        raise AssertionError("an unknown column did not fail")
    check = cursor(floe)
    check.execute(f"SELECT COUNT(*) FROM {db}.pass_py")
    assert check.fetchone()[0] == 2
    floe.close()
    server.close()
    print(f"{driver}: ok")


import pymysql  # noqa: E402

server = pymysql.connect(host=host, port=port, user=user, password="", database=db)
setup = server.cursor()
for sql in [
    "DROP TABLE IF EXISTS pass_py",
    "CREATE TABLE pass_py (id INT, name VARCHAR(40), price DECIMAL(10,2), at DATETIME, d DATE, "
    "t TIME, f DOUBLE, u BIGINT UNSIGNED, b VARBINARY(4))",
    "INSERT INTO pass_py VALUES (1, 'héllo', 1.50, '2024-02-29 13:14:15', '2024-02-29', "
    "'-01:02:03', 2.5, 18446744073709551615, x'00ff'), "
    "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
]:
    setup.execute(sql)
server.commit()
server.close()

compare(
    "pymysql",
    lambda h, p, u: pymysql.connect(host=h, port=p, user=u, password=""),
    lambda conn: conn.cursor(),
    TEXT_QUERIES,
    pymysql.err.MySQLError,
)

import mysql.connector  # noqa: E402


def connector(h, p, u):
    return mysql.connector.connect(
        host=h, port=p, user=u, password="", use_pure=True, ssl_disabled=True
    )


compare(
    "mysql.connector",
    connector,
    lambda conn: conn.cursor(),
    TEXT_QUERIES,
    mysql.connector.Error,
)
compare(
    "mysql.connector prepared",
    connector,
    lambda conn: conn.cursor(prepared=True),
    PREPARED_QUERIES,
    mysql.connector.Error,
)
