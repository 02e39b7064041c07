"""Reads one query from a BigQuery endpoint with Google's official Python client
(google-cloud-bigquery) and prints what it parsed, as JSON, for tests/bigquery_fidelity.rs
to compare with what kpibot's Rust client parsed from the same endpoint.

usage: python3 bigquery_read.py <endpoint> <case.json>
case.json: {"sql": "...", "params": [{"name", "type", "value" | "values"}], "page_size": n}
prints: {"columns": ["name:TYPE", ...], "rows": [[value, ...], ...]} where a value is
null, a bool, {"int": "..."}, {"float": x}, {"decimal": "..."}, {"date": "..."},
{"timestamp": "YYYY-MM-DDTHH:MM:SS.ffffff"} (UTC) or {"text": "..."}.
"""

import datetime
import decimal
import json
import sys

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery


def parameter(spec):
    kind = spec["type"]
    convert = {
        "DATE": datetime.date.fromisoformat,
        "TIMESTAMP": lambda v: datetime.datetime.fromisoformat(v).replace(
            tzinfo=datetime.timezone.utc
        ),
        "INT64": int,
        "FLOAT64": float,
        "NUMERIC": decimal.Decimal,
        "BOOL": lambda v: v == "true",
        "STRING": str,
    }[kind]
    if "values" in spec:
        return bigquery.ArrayQueryParameter(
            spec["name"], kind, [convert(v) for v in spec["values"]]
        )
    return bigquery.ScalarQueryParameter(spec["name"], kind, convert(spec["value"]))


def value(v):
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return {"int": str(v)}
    if isinstance(v, float):
        return {"float": v}
    if isinstance(v, decimal.Decimal):
        return {"decimal": str(v)}
    if isinstance(v, datetime.datetime):
        utc = v.astimezone(datetime.timezone.utc) if v.tzinfo else v
        return {"timestamp": utc.strftime("%Y-%m-%dT%H:%M:%S.%f")}
    if isinstance(v, datetime.date):
        return {"date": v.isoformat()}
    return {"text": str(v)}


def main():
    endpoint, case_file = sys.argv[1], sys.argv[2]
    with open(case_file, encoding="utf-8") as f:
        case = json.load(f)
    client = bigquery.Client(
        project="kpibot-test",
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=endpoint),
    )
    config = bigquery.QueryJobConfig(
        query_parameters=[parameter(p) for p in case["params"]],
        use_legacy_sql=False,
    )
    rows = client.query_and_wait(
        case["sql"], job_config=config, page_size=case.get("page_size")
    )
    result = {
        "columns": [f"{field.name}:{field.field_type}" for field in rows.schema],
        "rows": [[value(v) for v in row.values()] for row in rows],
    }
    json.dump(result, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
