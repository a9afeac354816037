//! The Arrow Flight SQL front end through arrow-flight's `FlightSqlServiceClient`
//! and, for status codes, the raw gRPC client.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int32Type, Int64Type, Schema};
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandStatementQuery, ProstMessageExt, SqlInfo,
};
use arrow_flight::{FlightDescriptor, FlightInfo, Ticket};
use futures::TryStreamExt;
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;

use crate::demo_daemon;
use floe_conformance::Daemon;

async fn channel(daemon: &Daemon) -> Channel {
    let addr = daemon
        .flight_sql
        .expect("the daemon listens for Flight SQL");
    Channel::from_shared(format!("http://{addr}"))
        .expect("URL")
        .connect()
        .await
        .expect("connect over gRPC")
}

/// A Flight SQL client on a trusting daemon (no users: no handshake needed).
pub async fn client(daemon: &Daemon) -> FlightSqlServiceClient<Channel> {
    FlightSqlServiceClient::new(channel(daemon).await)
}

/// Every batch of every endpoint of `info`.
pub async fn fetch(
    client: &mut FlightSqlServiceClient<Channel>,
    info: FlightInfo,
) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("an endpoint has a ticket");
        let stream = client.do_get(ticket).await.expect("DoGet");
        batches.extend(stream.try_collect::<Vec<_>>().await.expect("batches"));
    }
    batches
}

/// Runs a query and returns its batches.
pub async fn query(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Vec<RecordBatch> {
    let info = client
        .execute(sql.to_owned(), None)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    fetch(client, info).await
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

#[tokio::test]
async fn statements_run_and_stream() {
    let daemon = demo_daemon();
    let mut client = client(daemon).await;
    let batches = query(&mut client, "SELECT count(*) AS n FROM demo.trips").await;
    let n = batches[0].column(0).as_primitive::<Int64Type>().value(0);
    assert_eq!(n as u64, crate::DEMO_ROWS);
    // A million rows arrive in many batches, not one.
    let batches = query(&mut client, "SELECT trip_id, fare FROM demo.trips").await;
    assert_eq!(rows(&batches) as u64, crate::DEMO_ROWS);
    assert!(batches.len() > 10, "{} batches", batches.len());
    // Updates through DoPut.
    assert_eq!(
        client
            .execute_update(
                "CREATE TABLE public.flight_notes (id BIGINT, body VARCHAR)".into(),
                None
            )
            .await
            .expect("CREATE TABLE"),
        0
    );
    let inserted = client
        .execute_update(
            "INSERT INTO public.flight_notes VALUES (1, 'one'), (2, NULL)".into(),
            None,
        )
        .await
        .expect("INSERT");
    assert_eq!(inserted, 2);
    let batches = query(
        &mut client,
        "SELECT id, body FROM public.flight_notes ORDER BY id",
    )
    .await;
    let body = batches[0].column(1).as_string::<i32>();
    assert_eq!(body.value(0), "one");
    assert!(body.is_null(1));
}

#[tokio::test]
async fn prepared_statements_bind_parameters() {
    let daemon = demo_daemon();
    let mut client = client(daemon).await;
    let mut statement = client
        .prepare(
            "SELECT zone_id, borough FROM demo.zones WHERE zone_id = $1 OR borough = $2".into(),
            None,
        )
        .await
        .expect("prepare");
    assert_eq!(
        statement.parameter_schema().expect("schema").fields().len(),
        2
    );
    let params = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("$1", DataType::Int64, true),
            Field::new("$2", DataType::Utf8, true),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![42])),
            Arc::new(StringArray::from(vec![None::<&str>])),
        ],
    )
    .expect("batch");
    statement.set_parameters(params).expect("bind");
    let info = statement.execute().await.expect("execute");
    let batches = fetch(&mut client, info).await;
    assert_eq!(rows(&batches), 1);
    assert_eq!(
        batches[0].column(0).as_primitive::<Int32Type>().value(0),
        42
    );
    statement.close().await.expect("close");

    // `?` placeholders too, and an update with parameters.
    client
        .execute_update("CREATE TABLE public.flight_params (id BIGINT)".into(), None)
        .await
        .expect("CREATE TABLE");
    let mut insert = client
        .prepare("INSERT INTO public.flight_params VALUES (?)".into(), None)
        .await
        .expect("prepare insert");
    let values = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("$1", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![7, 8, 9]))],
    )
    .expect("batch");
    insert.set_parameters(values).expect("bind");
    assert_eq!(insert.execute_update().await.expect("insert"), 3);
    let batches = query(&mut client, "SELECT sum(id) FROM public.flight_params").await;
    assert_eq!(
        batches[0].column(0).as_primitive::<Int64Type>().value(0),
        24
    );
}

#[tokio::test]
async fn metadata_commands_answer() {
    let daemon = demo_daemon();
    let mut client = client(daemon).await;
    let info = client
        .get_sql_info(vec![
            SqlInfo::FlightSqlServerName,
            SqlInfo::FlightSqlServerVersion,
        ])
        .await
        .expect("sql info");
    assert_eq!(rows(&fetch(&mut client, info).await), 2);
    let info = client
        .get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: None })
        .await
        .expect("type info");
    assert!(rows(&fetch(&mut client, info).await) >= 10);
    let info = client.get_catalogs().await.expect("catalogs");
    let catalogs = fetch(&mut client, info).await;
    assert_eq!(catalogs[0].column(0).as_string::<i32>().value(0), "lake");
    let info = client
        .get_db_schemas(CommandGetDbSchemas {
            catalog: Some("lake".into()),
            db_schema_filter_pattern: Some("de%".into()),
        })
        .await
        .expect("schemas");
    let schemas = fetch(&mut client, info).await;
    assert_eq!(rows(&schemas), 1);
    let info = client
        .get_tables(CommandGetTables {
            catalog: Some("lake".into()),
            db_schema_filter_pattern: Some("demo".into()),
            table_name_filter_pattern: Some("zo%".into()),
            table_types: vec![],
            include_schema: true,
        })
        .await
        .expect("tables");
    let tables = fetch(&mut client, info).await;
    assert_eq!(rows(&tables), 1);
    let schema_bytes = tables[0].column(4).as_binary::<i32>().value(0).to_vec();
    let schema =
        arrow::ipc::convert::try_schema_from_ipc_buffer(&schema_bytes).expect("IPC schema");
    assert!(schema.field_with_name("zone_id").is_ok(), "{schema:?}");
    let info = client.get_table_types().await.expect("table types");
    assert!(rows(&fetch(&mut client, info).await) >= 2);
    let info = client
        .get_primary_keys(CommandGetPrimaryKeys {
            catalog: None,
            db_schema: Some("demo".into()),
            table: "zones".into(),
        })
        .await
        .expect("primary keys");
    assert_eq!(rows(&fetch(&mut client, info).await), 0);
}

/// The gRPC status of `GetFlightInfo` for a statement.
async fn statement_status(daemon: &Daemon, sql: &str, token: Option<&str>) -> tonic::Status {
    let mut raw = FlightServiceClient::new(channel(daemon).await);
    let command = CommandStatementQuery {
        query: sql.to_owned(),
        transaction_id: None,
    };
    let mut request =
        tonic::Request::new(FlightDescriptor::new_cmd(command.as_any().encode_to_vec()));
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    raw.get_flight_info(request)
        .await
        .expect_err("the call fails")
}

#[tokio::test]
async fn errors_map_to_grpc_codes() {
    let daemon = demo_daemon();
    let status = statement_status(daemon, "SELEC 1", None).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(
        status.message().to_lowercase().contains("selec"),
        "{status}"
    );
    let status = statement_status(daemon, "SELECT * FROM demo.nowhere", None).await;
    assert_eq!(status.code(), Code::NotFound, "{status}");
    let status = statement_status(daemon, "SELECT 1", Some("forged")).await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");
    // A ticket Floe never issued.
    let mut client = client(daemon).await;
    let forged = arrow_flight::sql::TicketStatementQuery {
        statement_handle: vec![1u8; 16].into(),
    };
    let err = client
        .do_get(Ticket::new(forged.as_any().encode_to_vec()))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("ticket"), "{err}");
    // Commands Floe does not implement say which.
    let mut raw = FlightServiceClient::new(channel(daemon).await);
    let substrait = arrow_flight::sql::CommandStatementSubstraitPlan::default();
    let status = raw
        .get_flight_info(FlightDescriptor::new_cmd(
            substrait.as_any().encode_to_vec(),
        ))
        .await
        .expect_err("unimplemented");
    assert_eq!(status.code(), Code::Unimplemented);
    assert!(status.message().contains("substrait"), "{status}");
}

#[tokio::test]
async fn handshake_issues_a_token_that_every_call_needs() {
    let daemon = crate::plain_daemon("[[users]]\nname = \"app\"\npassword = \"s3cret\"\n");
    let mut anonymous = client(&daemon).await;
    let err = anonymous
        .execute("SELECT 1".into(), None)
        .await
        .expect_err("no token");
    assert!(err.to_string().to_lowercase().contains("token"), "{err}");
    let mut wrong = client(&daemon).await;
    assert!(
        wrong.handshake("app", "nope").await.is_err(),
        "wrong password"
    );
    let mut client = client(&daemon).await;
    client.handshake("app", "s3cret").await.expect("handshake");
    let batches = query(&mut client, "SELECT 41 + 1 AS answer").await;
    assert_eq!(
        batches[0].column(0).as_primitive::<Int64Type>().value(0),
        42
    );
    let status = statement_status(&daemon, "SELECT 1", Some("not-a-token")).await;
    assert_eq!(status.code(), Code::Unauthenticated);
    // A ticket is single use.
    let info = client.execute("SELECT 1".into(), None).await.expect("info");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let first = client.do_get(ticket.clone()).await.expect("first use");
    let _: Vec<RecordBatch> = first.try_collect().await.expect("rows");
    assert!(
        client.do_get(ticket).await.is_err(),
        "a ticket is single use"
    );
}

#[tokio::test]
async fn ten_million_rows_stream_without_being_held_in_memory() {
    // Its own daemon, so that no other test moves its peak memory.
    let daemon = crate::plain_daemon("");
    let mut client = client(&daemon).await;
    let before = crate::peak_rss_kib(daemon.pid());
    // 10 M rows of two BIGINTs: 160 MB as Arrow.
    let info = client
        .execute(
            "SELECT value AS id, value * 2 AS twice FROM generate_series(1, 10000000)".into(),
            None,
        )
        .await
        .expect("GetFlightInfo");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let mut stream = client.do_get(ticket).await.expect("DoGet");
    let (mut rows, mut sum) = (0u64, 0i64);
    while let Some(batch) = stream.try_next().await.expect("batch") {
        rows += batch.num_rows() as u64;
        sum += arrow::compute::sum(batch.column(0).as_primitive::<Int64Type>()).unwrap_or(0);
    }
    assert_eq!(rows, 10_000_000);
    assert_eq!(sum, 10_000_000 * 10_000_001 / 2);
    let grown_mib = crate::peak_rss_kib(daemon.pid()).saturating_sub(before) / 1024;
    assert!(
        grown_mib < 96,
        "the daemon's peak memory grew by {grown_mib} MiB while streaming"
    );
}
