"""psycopg 3 against Floe: connect, parameters, server-side binding, and a
large result streamed with bounded client memory.

Usage: psycopg_suite.py <postgresql-url> <demo-rows>
"""

import resource
import sys

import psycopg


def main() -> None:
    url, demo_rows = sys.argv[1], int(sys.argv[2])

    with psycopg.connect(url, autocommit=True) as conn:
        # Client-side binding (the default): parameters are quoted into the text.
        row = conn.execute("SELECT count(*) FROM demo.zones WHERE zone_id <= %s", (10,)).fetchone()
        assert row == (10,), row

        # Server-side binding: the extended protocol with $n parameters.
        cur = psycopg.ClientCursor(conn)
        assert cur.execute("SELECT %s::BIGINT + 1", (41,)).fetchone() == (42,)
        with conn.cursor() as cur:
            cur.execute(
                "SELECT trip_id, passengers, payment FROM demo.trips WHERE trip_id = %s",
                (12345,),
                prepare=True,
            )
            trip_id, passengers, payment = cur.fetchone()
            assert trip_id == 12345
            assert passengers == 1 + (12345 * 31) % 5
            assert payment == ("cash" if 12345 % 4 == 1 else "card" if 12345 % 4 in (0, 2) else "app")
            # Reuse of the prepared statement.
            for n in (1, 2, 3):
                cur.execute("SELECT trip_id, passengers, payment FROM demo.trips WHERE trip_id = %s", (n,), prepare=True)
                assert cur.fetchone()[0] == n

        # Binary results.
        with conn.cursor(binary=True) as cur:
            cur.execute("SELECT fare, pickup_at, shared FROM demo.trips WHERE trip_id = %s", (10,))
            fare, pickup_at, shared = cur.fetchone()
            assert shared is True
            assert str(fare) == "%.2f" % ((250 + ((10 * 7919) % 40000) * 2) / 100), fare

        # Errors keep the connection usable.
        try:
            conn.execute("SELECT * FROM no_such_table")
            raise AssertionError("expected an error")
        except psycopg.errors.UndefinedTable:
            pass
        assert conn.execute("SELECT 1").fetchone() == (1,)

    # A large result streamed row by row: client memory stays bounded.
    with psycopg.connect(url, autocommit=True) as conn:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        target = 1_000_000
        count = 0
        total = 0
        with conn.cursor() as cur:
            for (trip_id,) in cur.stream(
                "SELECT a.trip_id FROM demo.trips a, demo.zones b WHERE b.zone_id <= %s",
                ((target + demo_rows - 1) // demo_rows,),
            ):
                count += 1
                total += trip_id
        zones = (target + demo_rows - 1) // demo_rows
        assert count == demo_rows * zones, count
        assert total == zones * demo_rows * (demo_rows + 1) // 2, total
        grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        # Holding a million rows in Python would take well over 100 MiB.
        assert grown_kib < 64 * 1024, f"client memory grew by {grown_kib} KiB"

    print("psycopg suite: ok")


if __name__ == "__main__":
    main()
