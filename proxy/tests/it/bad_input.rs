//! Malformed and hostile input closes only the offending connection.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::demo_daemon;

/// Sends `bytes`, then reads until the server closes or a second passes;
/// returns what it answered.
async fn send_raw(bytes: &[u8]) -> Vec<u8> {
    let daemon = demo_daemon();
    let mut socket = TcpStream::connect(daemon.postgres).await.expect("connect");
    let _ = socket.write_all(bytes).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
    answer
}

fn startup(user: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196_608u32.to_be_bytes());
    for (k, v) in [("user", user), ("database", "floe")] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

async fn still_serving() {
    let client = demo_daemon().connect().await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM demo.zones", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(n, 263);
}

#[tokio::test]
async fn random_bytes_are_refused_and_others_still_served() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    send_raw(&garbage).await;
    still_serving().await;
}

#[tokio::test]
async fn truncated_startup_is_refused_and_others_still_served() {
    let packet = startup("floe");
    send_raw(&packet[..packet.len() / 2]).await;
    still_serving().await;
}

#[tokio::test]
async fn huge_length_prefix_is_refused_without_allocating_it() {
    let mut packet = startup("floe");
    let mut answer_ready = Vec::new();
    // A Query message claiming 2 GiB after a valid startup.
    packet.extend_from_slice(b"Q");
    packet.extend_from_slice(&0x7fff_fff0u32.to_be_bytes());
    packet.extend_from_slice(b"SELECT 1");
    answer_ready.extend(send_raw(&packet).await);
    assert!(
        answer_ready.contains(&b'E'),
        "the server answers an oversized message with an ErrorResponse"
    );
    still_serving().await;
}

#[tokio::test]
async fn unknown_message_type_is_refused_and_others_still_served() {
    let mut packet = startup("floe");
    packet.extend_from_slice(b"\x01");
    packet.extend_from_slice(&8u32.to_be_bytes());
    packet.extend_from_slice(b"abcd");
    send_raw(&packet).await;
    still_serving().await;
}
