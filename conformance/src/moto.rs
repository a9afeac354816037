//! moto's server mode on a free loopback port: AWS Glue, S3 and S3 Tables
//! for the tests of Floe's AWS catalogs, from the test venv (`bash
//! scripts/test` installs `moto[server]` and names the venv's Python in
//! `FLOE_PYTHON`).

use crate::python;
use std::process::{Child, Command, Stdio};

/// The region every moto test uses.
pub const REGION: &str = "us-east-1";
/// moto accepts any credentials; this is its documented test value, used as
/// both the access key id and the secret.
pub const KEY: &str = "testing";

/// moto's server, with two fixes where moto 5.2's S3 Tables replies differ
/// from the AWS API model (which the Rust SDK enforces, refusing the reply):
/// `GetTable`'s `managedByService` is a boolean where the model has a string
/// (sent as `null` here, which the model allows), and
/// `UpdateTableMetadataLocation`'s `namespace` is a string where the model has
/// a list.
const SERVER: &str = "\
import sys
import moto.s3tables.models as tables
created = tables.Table.__init__
def init(self, *args, **kwargs):
    created(self, *args, **kwargs)
    self.managed_by_service = None
tables.Table.__init__ = init
import json
import moto.s3tables.responses as responses
update = responses.S3TablesResponse.update_table_metadata_location
def update_fixed(self):
    status, headers, body = update(self)
    reply = json.loads(body)
    if isinstance(reply.get('namespace'), str):
        reply['namespace'] = [reply['namespace']]
    return status, headers, json.dumps(reply)
responses.S3TablesResponse.update_table_metadata_location = update_fixed
from moto.server import main
main(['-H', '127.0.0.1', '-p', sys.argv[1]])
";

/// A running moto server, killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto and waits until it accepts connections.
    ///
    /// # Panics
    ///
    /// When moto cannot start or does not listen within 30 s.
    pub async fn start() -> Moto {
        let port = crate::free_port();
        let child = Command::new(python())
            .args(["-c", SERVER, &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto (pip install 'moto[server]')");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        crate::wait_for_port(port, "moto").await;
        moto
    }

    /// Runs a boto3 call against moto; `call` is a Python expression on a
    /// client `c` of `service`. Returns what it prints.
    ///
    /// # Panics
    ///
    /// When the call fails.
    pub fn boto3(&self, service: &str, call: &str) -> String {
        let script = format!(
            "import boto3, sys\n\
             c = boto3.client(sys.argv[1], endpoint_url=sys.argv[2], region_name=sys.argv[3], \
             aws_access_key_id=sys.argv[4], aws_secret_access_key=sys.argv[4])\n\
             print({call})"
        );
        let out = Command::new(python())
            .args(["-c", &script, service, &self.endpoint, REGION, KEY])
            .output()
            .expect("run boto3");
        assert!(
            out.status.success(),
            "boto3 {service}: {call}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Creates an S3 bucket.
    pub fn create_bucket(&self, bucket: &str) {
        self.boto3("s3", &format!("c.create_bucket(Bucket='{bucket}')"));
    }

    /// Creates an S3 Tables table bucket and returns its ARN.
    pub fn create_table_bucket(&self, name: &str) -> String {
        self.boto3(
            "s3tables",
            &format!("c.create_table_bucket(name='{name}')['arn']"),
        )
    }

    /// iceberg-rust's catalog and S3 properties for this server, as
    /// `[catalogs.properties]` takes them.
    pub fn catalog_properties(&self) -> Vec<(&'static str, String)> {
        vec![
            ("region_name", REGION.to_owned()),
            ("aws_access_key_id", KEY.to_owned()),
            ("aws_secret_access_key", KEY.to_owned()),
            ("s3.endpoint", self.endpoint.clone()),
            ("s3.region", REGION.to_owned()),
            ("s3.access-key-id", KEY.to_owned()),
            ("s3.secret-access-key", KEY.to_owned()),
            // moto serves every bucket on one host: path-style addressing.
            ("s3.path-style-access", "true".to_owned()),
        ]
    }
}
