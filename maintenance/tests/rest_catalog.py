"""An Iceberg REST catalog for the tests: the REST protocol over HTTP in
front of pyiceberg's SQL catalog (SQLite, local warehouse), which validates
every commit's requirements and applies its updates as the spec says.

No REST catalog server installs from the registries this project reaches
(Polaris, Nessie, Lakekeeper and Gravitino ship as JVM or container images),
so the tests drive Floe's REST connector against this one. It checks
OAuth2 client credentials like a real deployment: POST /v1/oauth/tokens
with the right client id and secret gives a token, and every other request
must carry it; a prefix from /v1/config must be used in every table path.

    rest_catalog.py PORT DATA_DIR CLIENT_ID CLIENT_SECRET
"""

import json
import secrets
import sys

from flask import Flask, Response, request
from pyiceberg.catalog.rest import CreateTableRequest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.table import CommitTableRequest

PREFIX = "floe-test"


def main():
    port, data_dir, client_id, client_secret = sys.argv[1:5]
    catalog = SqlCatalog(
        "rest",
        uri=f"sqlite:///{data_dir}/catalog.db",
        warehouse=f"file://{data_dir}/warehouse",
    )
    token = secrets.token_hex(16)
    app = Flask("rest_catalog")

    def reply(body, status=200):
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def error(status, kind, message):
        return reply({"error": {"message": message, "type": kind, "code": status}}, status)

    def load_result(table):
        return {
            "metadata-location": table.metadata_location,
            "metadata": json.loads(table.metadata.model_dump_json()),
            "config": {},
        }

    def namespace(ns):
        # The REST spec joins namespace levels with the unit separator.
        return tuple(ns.split("\x1f"))

    @app.before_request
    def authenticate():
        if request.path == "/v1/oauth/tokens":
            return None
        if request.headers.get("Authorization") != f"Bearer {token}":
            return error(401, "NotAuthorizedException", "missing or wrong bearer token")
        return None

    @app.post("/v1/oauth/tokens")
    def oauth():
        form = request.form
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != client_id
            or form.get("client_secret") != client_secret
        ):
            return reply({"error": "invalid_client"}, 401)
        return reply(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": 3600,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            }
        )

    @app.get("/v1/config")
    def config():
        return reply({"defaults": {}, "overrides": {"prefix": PREFIX}})

    @app.get(f"/v1/{PREFIX}/namespaces")
    def list_namespaces():
        return reply({"namespaces": [list(ns) for ns in catalog.list_namespaces()]})

    @app.post(f"/v1/{PREFIX}/namespaces")
    def create_namespace():
        body = request.get_json()
        try:
            catalog.create_namespace(tuple(body["namespace"]), body.get("properties") or {})
        except NamespaceAlreadyExistsError as e:
            return error(409, "AlreadyExistsException", str(e))
        return reply({"namespace": body["namespace"], "properties": body.get("properties") or {}})

    @app.route(f"/v1/{PREFIX}/namespaces/<ns>", methods=["GET", "HEAD"])
    def get_namespace(ns):
        try:
            properties = catalog.load_namespace_properties(namespace(ns))
        except NoSuchNamespaceError as e:
            return error(404, "NoSuchNamespaceException", str(e))
        if request.method == "HEAD":
            return Response(status=204)
        return reply({"namespace": list(namespace(ns)), "properties": properties})

    @app.get(f"/v1/{PREFIX}/namespaces/<ns>/tables")
    def list_tables(ns):
        try:
            tables = catalog.list_tables(namespace(ns))
        except NoSuchNamespaceError as e:
            return error(404, "NoSuchNamespaceException", str(e))
        return reply(
            {"identifiers": [{"namespace": list(t[:-1]), "name": t[-1]} for t in tables]}
        )

    @app.post(f"/v1/{PREFIX}/namespaces/<ns>/tables")
    def create_table(ns):
        raw = request.get_json()
        # pyiceberg's model wants every optional field present.
        for key in ("location", "partition-spec", "write-order"):
            raw.setdefault(key, None)
        raw.setdefault("properties", {})
        body = CreateTableRequest.model_validate(raw)
        try:
            table = catalog.create_table(
                namespace(ns) + (body.name,),
                schema=body.table_schema,
                location=body.location,
                **({"partition_spec": body.partition_spec} if body.partition_spec else {}),
                **({"sort_order": body.write_order} if body.write_order else {}),
                properties=body.properties,
            )
        except TableAlreadyExistsError as e:
            return error(409, "AlreadyExistsException", str(e))
        return reply(load_result(table))

    @app.route(f"/v1/{PREFIX}/namespaces/<ns>/tables/<name>", methods=["GET", "HEAD"])
    def load_table(ns, name):
        try:
            table = catalog.load_table(namespace(ns) + (name,))
        except NoSuchTableError as e:
            return error(404, "NoSuchTableException", str(e))
        if request.method == "HEAD":
            return Response(status=204)
        return reply(load_result(table))

    @app.post(f"/v1/{PREFIX}/namespaces/<ns>/tables/<name>")
    def commit(ns, name):
        body = CommitTableRequest.model_validate(request.get_json())
        try:
            table = catalog.load_table(namespace(ns) + (name,))
            done = catalog.commit_table(table, body.requirements, body.updates)
        except NoSuchTableError as e:
            return error(404, "NoSuchTableException", str(e))
        except CommitFailedException as e:
            return error(409, "CommitFailedException", str(e))
        return reply(
            {
                "metadata-location": done.metadata_location,
                "metadata": json.loads(done.metadata.model_dump_json()),
            }
        )

    app.run(host="127.0.0.1", port=int(port), threaded=False)


if __name__ == "__main__":
    main()
