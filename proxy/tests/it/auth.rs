//! Password authentication (SCRAM-SHA-256 and MD5) against configured users.

use floe_conformance::Daemon;

use crate::options;

fn daemon_with_user(method: &str) -> Daemon {
    Daemon::start(
        options()
            .config(&format!(
                "[postgres]\nauth_method = \"{method}\"\n\n[[users]]\nname = \"app\"\npassword_env = \"FLOE_TEST_APP_PASSWORD\"\n"
            ))
            .env("FLOE_TEST_APP_PASSWORD", "s3cret pass"),
    )
}

async fn login(daemon: &Daemon, user: &str, password: &str) -> Result<(), tokio_postgres::Error> {
    let config = format!("{} password='{password}'", daemon.pg_config(user));
    let client = daemon.try_connect(&config).await?;
    let one: i64 = client.query_one("SELECT 1", &[]).await?.get(0);
    assert_eq!(one, 1);
    Ok(())
}

#[tokio::test]
async fn scram_accepts_the_right_password_and_refuses_a_wrong_one() {
    let daemon = daemon_with_user("scram-sha-256");
    login(&daemon, "app", "s3cret pass")
        .await
        .expect("right password");
    let err = login(&daemon, "app", "wrong")
        .await
        .expect_err("wrong password");
    assert_eq!(err.code().map(|c| c.code()), Some("28P01"), "{err}");
    let err = login(&daemon, "nobody", "s3cret pass")
        .await
        .expect_err("unknown user");
    assert_eq!(err.code().map(|c| c.code()), Some("28P01"), "{err}");
    login(&daemon, "app", "s3cret pass")
        .await
        .expect("still serving after failures");
}

#[tokio::test]
async fn md5_accepts_the_right_password_and_refuses_a_wrong_one() {
    let daemon = daemon_with_user("md5");
    login(&daemon, "app", "s3cret pass")
        .await
        .expect("right password");
    let err = login(&daemon, "app", "wrong")
        .await
        .expect_err("wrong password");
    assert_eq!(err.code().map(|c| c.code()), Some("28P01"), "{err}");
}
