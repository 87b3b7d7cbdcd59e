"""End-to-end throughput and latency of the worker: claims.raw -> claims.coded.

Publishes N claims to fresh topics, runs one `claimcoder worker` process (the configured coder,
retrieval by default) and reads claims.coded until all N arrived. Latency per claim is the
output record's broker timestamp minus the input's (both CreateTime, one clock).

    CLAIMCODER_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    CLAIMCODER_REDIS_URL=redis://127.0.0.1:6379/0 python -m bench.bench_pipeline --claims 1000

Servers not given by URL are started from the local stack. Writes bench/results/pipeline.json.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaConsumer, KafkaProducer
from psycopg import sql

from bench.report import write_report
from tests.pipeline_support import claim_events
from worker.kafka import client_options, create_topics
from worker.localstack import LocalStack
from worker.prepare import prepare_reference_data
from worker.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="claimcoder-bench-"))
    stack = LocalStack(state)
    services = stack.up()
    run = uuid.uuid4().hex[:8]
    settings = Settings(
        kafka={"bootstrap_servers": services["kafka"].url, "consumer_group": f"bench-{run}"},
        topics={"raw": f"bench{run}.raw", "coded": f"bench{run}.coded", "dlq": f"bench{run}.dlq"},
        database={"url": services["postgres"].url, "schema_name": f"bench_{run}"},
        redis={"url": services["redis"].url, "key_prefix": f"bench:{run}:"},
        batch={"max_size": args.batch, "max_wait_s": 0.2},
        state_dir=state,
    )
    db_url = settings.database.url.get_secret_value()
    schema = sql.Identifier(f"bench_{run}")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
    worker = None
    try:
        prepare_reference_data(settings)
        create_topics(settings.kafka, settings.topics)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMCODER_")}
        env.update(settings.to_env())
        log = (state / "worker.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "worker", "worker"], env=env, stdout=log, stderr=log
        )
        events = claim_events(args.claims, "bench")
        # Warm-up claim: the worker joins its group and loads its coder before the clock starts.
        reader = KafkaConsumer(
            settings.topics.coded,
            **client_options(settings.kafka),
            group_id=None,
            auto_offset_reset="earliest",
        )
        producer = KafkaProducer(**client_options(settings.kafka), acks="all", linger_ms=5)
        warm = dict(events[0], claim_id="warm-up")
        producer.send(settings.topics.raw, key=b"warm-up", value=json.dumps(warm).encode())
        producer.flush()
        while not any(reader.poll(timeout_ms=500).values()):
            if worker.poll() is not None:
                raise SystemExit("worker exited; see " + str(state / "worker.log"))
        sent_at: dict[bytes, Any] = {}  # kafka-python FutureRecordMetadata
        started = time.perf_counter()
        for event in events:
            key = event["claim_id"].encode()
            future = producer.send(settings.topics.raw, key=key, value=json.dumps(event).encode())
            sent_at[key] = future
        producer.flush()
        publish_s = time.perf_counter() - started
        input_ts = {k: f.get(30).timestamp for k, f in sent_at.items()}
        latencies_ms: list[float] = []
        statuses: dict[str, int] = {}
        while len(latencies_ms) < len(events):
            for batch in reader.poll(timeout_ms=500).values():
                for record in batch:
                    if record.key in input_ts:
                        latencies_ms.append(record.timestamp - input_ts.pop(record.key))
                        status = json.loads(record.value)["status"]
                        statuses[status] = statuses.get(status, 0) + 1
            if time.perf_counter() - started > 600:
                raise SystemExit(f"only {len(latencies_ms)} of {len(events)} arrived in 600 s")
        total_s = time.perf_counter() - started
        producer.close()
        reader.close()
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(60)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))
        stack.down()

    quantiles = statistics.quantiles(latencies_ms, n=100)
    result = {
        "claims": args.claims,
        "batch_max_size": args.batch,
        "coder": settings.coder.kind,
        "publish_s": round(publish_s, 3),
        "total_s": round(total_s, 3),
        "claims_per_s": round(args.claims / total_s, 1),
        "latency_ms_p50": round(quantiles[49], 1),
        "latency_ms_p95": round(quantiles[94], 1),
        "latency_ms_max": round(max(latencies_ms), 1),
        "statuses": statuses,
    }
    write_report(RESULTS, result)


if __name__ == "__main__":
    main()
