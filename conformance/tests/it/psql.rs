//! psql, the reference PostgreSQL client.

use crate::{DEMO_ROWS, demo_daemon, success};

/// psql against the shared demo daemon; its output, or a panic with its errors.
fn psql(args: &[&str]) -> String {
    let mut all = vec!["-v", "ON_ERROR_STOP=1"];
    all.extend_from_slice(args);
    success(
        &crate::psql(demo_daemon(), "prefer", &all),
        &format!("psql {args:?}"),
    )
}

#[test]
fn psql_c_runs_a_query() {
    let out = psql(&["-At", "-c", "SELECT count(*) FROM demo.zones"]);
    assert_eq!(out.trim(), "263");
}

#[test]
fn psql_query_matches_an_independently_computed_answer() {
    let out = psql(&[
        "-At",
        "-c",
        "SELECT sum(passengers), count(*) FROM demo.trips WHERE trip_id % 7 = 3 AND payment = 'card'",
    ]);
    let (mut sum, mut count) = (0i64, 0i64);
    for n in 1..=DEMO_ROWS as i64 {
        // payment is 'card' when n % 4 is 0 or 2 (see proxy/src/demo.rs).
        if n % 7 == 3 && (n % 4 == 0 || n % 4 == 2) {
            sum += 1 + (n * 31) % 5;
            count += 1;
        }
    }
    assert_eq!(out.trim(), format!("{sum}|{count}"));
}

#[test]
fn psql_dt_lists_the_demo_tables() {
    let out = psql(&["-c", "\\dt demo.*"]);
    assert!(out.contains("trips"), "{out}");
    assert!(out.contains("zones"), "{out}");
    let all = psql(&["-c", "\\dt *.*"]);
    assert!(all.contains("trips"), "{all}");
}

#[test]
fn psql_d_describes_a_demo_table() {
    let out = psql(&["-c", "\\d demo.trips"]);
    for column in ["trip_id", "pickup_at", "fare", "payment", "shared"] {
        assert!(
            out.contains(column),
            "\\d demo.trips lacks {column}:\n{out}"
        );
    }
}

#[test]
fn psql_reports_errors_with_sqlstate() {
    let output = crate::psql(
        demo_daemon(),
        "prefer",
        &["-v", "VERBOSITY=verbose", "-c", "SELECT * FROM nope"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("42P01"), "{stderr}");
}
