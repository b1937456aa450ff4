#!/usr/bin/env python3
"""PgQueuer pushing N v1 records to a `callwindow sandbox`: the other side of the comparison in
docs/PERFORMANCE.md. Not part of the test suite; PgQueuer is used as a library, from PyPI.

    python3 -m venv /tmp/pgq && /tmp/pgq/bin/pip install pgqueuer==1.6.0 asyncpg aiohttp
    callwindow sandbox --config SANDBOX_YAML_WITH_limits.enforce_false --port 18089 &
    /tmp/pgq/bin/python scripts/pgqueuer-push.py DSN http://127.0.0.1:18089 20000 10 10

Arguments: DSN (a database it may own: it installs PgQueuer's tables there and empties them),
API_URL, RECORDS, TOKENS (minted from the demo account of config/sandbox.yaml), BATCH_SIZE
(PgQueuer's `batch_size`; 10 is its default). Prints one JSON line: records/s from the first
job to the last answer, the process's CPU seconds and peak RSS.
"""
import asyncio, json, resource, sys, time
from datetime import timedelta

import aiohttp, asyncpg
from pgqueuer import AsyncpgDriver, Queries, QueueManager
from pgqueuer.domain.types import QueueExecutionMode

CLIENT = "6f1c3a52-0d7e-4c1b-9a55-3b2d8e7f4a10"
KEY_ID = "1c9e5f0a-7b3d-4e2f-a1c4-d5e6f7a8b9c0"
API_KEY = "2d0f6a1b-8c4e-4f3a-b2d5-e6f7a8b9c0d1"
LABEL = "0b7d7a3e-1f7e-4b8e-9a0c-2f6d1c9e8a01"


async def main():
    dsn, api, records, tokens, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
    minted = []
    for _ in range(tokens):
        async with http.post(f"{api}/clients/{CLIENT}/token", json={"key_id": KEY_ID, "api_key": API_KEY},
                             headers={"X-Public-Access": "allow"}) as r:
            minted.append((await r.json())["token"])
    conn = await asyncpg.connect(dsn)
    driver = AsyncpgDriver(conn)
    queries = Queries(driver)
    try:
        await queries.install()
    except asyncpg.exceptions.DuplicateObjectError:
        pass  # installed by an earlier run
    await conn.execute("TRUNCATE pgqueuer, pgqueuer_log, pgqueuer_statistics")
    now = int(time.time() * 1000)
    payloads = [json.dumps({"caller": "4930000001", "receiver": str(4915100000000 + i), "label_id": LABEL,
                            "label_name": "Acme", "call_reason": "Your parcel arrives today",
                            "starts_at": now + 60_000, "ends_at": now + 3_600_000}).encode() for i in range(records)]
    for i in range(0, records, 1000):
        chunk = payloads[i:i + 1000]
        await queries.enqueue(["push"] * len(chunk), chunk, [0] * len(chunk))
    qm = QueueManager(Queries(AsyncpgDriver(await asyncpg.connect(dsn))))
    counts = {"accepted": 0, "other": 0}
    first = []
    turn = [0]
    last = [0.0]

    @qm.entrypoint("push")
    async def push(job):
        if not first:
            first.append(time.monotonic())
        token = minted[turn[0] % len(minted)]
        turn[0] += 1
        async with http.post(f"{api}/clients/{CLIENT}/dynamic_call_record", data=job.payload,
                             headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}) as r:
            await r.read()
            counts["accepted" if r.status == 200 else "other"] += 1
            last[0] = time.monotonic()

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    await qm.run(batch_size=batch, mode=QueueExecutionMode.drain, dequeue_timeout=timedelta(seconds=1))
    end = time.monotonic()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    await http.close()
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print(json.dumps({"records": records, "accepted": counts["accepted"], "other": counts["other"],
                      "records_per_s": round(counts["accepted"] / (last[0] - first[0]) if first else 0, 1),
                      "seconds": round(end - start, 2), "cpu_s": round(cpu, 2),
                      "peak_rss_mb": round(cpu1.ru_maxrss / 1024, 1)}))


asyncio.run(main())
