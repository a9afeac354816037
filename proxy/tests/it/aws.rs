//! A daemon whose only catalog is AWS Glue with the warehouse on S3, both
//! served by moto on loopback: SQL through the PostgreSQL front end creates,
//! fills and reads a Glue table; `floe tables` lists it and `floe maintain`
//! runs every operation on it under the running daemon, which then reads the
//! same rows. The catalog's secret reaches the daemon and the CLI through an
//! `env:` property, never the config file.

use floe_conformance::moto::{KEY, Moto};

use crate::maintenance::{floe, ok};
use crate::{options, text_rows};

const SECRET_VAR: &str = "FLOE_TEST_AWS_SECRET";

async fn read(client: &tokio_postgres::Client) -> Vec<Vec<Option<String>>> {
    text_rows(
        &client
            .simple_query("SELECT count(*), sum(id), sum(v) FROM glue.public.events")
            .await
            .expect("read the Glue table"),
    )
}

#[tokio::test]
async fn a_daemon_on_glue_serves_sql_and_maintains_its_tables() {
    let moto = Moto::start().await;
    moto.create_bucket("floe-daemon");
    let mut config = format!(
        "[[catalogs]]\nname = \"glue\"\ntype = \"glue\"\nuri = \"{}\"\nwarehouse = \"s3://floe-daemon/warehouse\"\n\n[catalogs.properties]\n",
        moto.endpoint
    );
    for (key, value) in moto.catalog_properties() {
        let value = if key == "aws_secret_access_key" {
            format!("env:{SECRET_VAR}")
        } else {
            value
        };
        config.push_str(&format!("{key:?} = {value:?}\n"));
    }
    assert!(!config.contains(&format!("aws_secret_access_key\" = \"{KEY}\"")));
    let daemon = floe_conformance::Daemon::start(options().config(&config).env(SECRET_VAR, KEY));
    let client = daemon.connect().await;
    client
        .batch_execute("CREATE TABLE events (id BIGINT, v BIGINT)")
        .await
        .expect("create a table in Glue");
    for batch in 0..6 {
        let values: Vec<String> = (batch * 100..(batch + 1) * 100)
            .map(|id| format!("({id}, {})", id * 3))
            .collect();
        client
            .batch_execute(&format!("INSERT INTO events VALUES {}", values.join(", ")))
            .await
            .expect("insert into the Glue table");
    }
    let before = read(&client).await;
    assert_eq!(
        before,
        vec![vec![
            Some("600".to_owned()),
            Some("179700".to_owned()),
            Some("539100".to_owned())
        ]]
    );

    let env = [(SECRET_VAR, KEY)];
    let tables = ok(&floe(&daemon, &["tables"], &env));
    assert!(tables.contains("glue.public.events"), "{tables}");
    let done = ok(&floe(
        &daemon,
        &[
            "maintain",
            "glue.public.events",
            "--ops",
            "expire,orphans,compact,manifests",
            "--expire-older-than",
            "0s",
            "--orphans-older-than",
            "0s",
        ],
        &env,
    ));
    assert!(done.contains("glue.public.events compact"), "{done}");
    let shown: serde_json::Value = serde_json::from_str(&ok(&floe(
        &daemon,
        &["table", "show", "glue.public.events", "--json"],
        &env,
    )))
    .expect("table show JSON");
    assert_eq!(shown["data_files"], 1, "{shown:#}");
    assert_eq!(shown["manifests"], 1, "{shown:#}");
    assert!(
        shown["metadata_location"]
            .as_str()
            .is_some_and(|l| l.starts_with("s3://floe-daemon/warehouse/")),
        "{shown:#}"
    );
    assert_eq!(
        read(&client).await,
        before,
        "the daemon reads the same rows"
    );

    // Without the variable, the CLI refuses the catalog and names the property.
    let refused = floe(&daemon, &["tables"], &[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("aws_secret_access_key") && stderr.contains(SECRET_VAR),
        "{stderr}"
    );
}
