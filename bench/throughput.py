"""Throughput: N findings through the functions' real binaries, `concurrency` at a time (as many
warm Lambda instances, half s3-block-public-access, half sg-revoke-open-ingress, each taking one
event at a time from a shared Runtime API), then every record checked in the table; and the
emulator's own capacity for the same calls, sent by bare clients as many at a time.

The mix, with a fixed seed: 40 % public buckets, 40 % open security groups, 10 % duplicates
(an earlier finding's exact bytes again, often while the first is still running), 10 % hostile
events from events/hostile/ (rejected, changing nothing).
"""

import json
import queue
import random
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from bench import ROOT, SAMPLE_BUCKET, SAMPLE_GROUP, SCENARIOS, FunctionProcess, load, record_calls, remap
from calls import BareClient

GD_FINDING_ID = "60b8c1d2e3f4a5b6c7d8e9f0a1b2c3d4"
S3, SG = "s3-block-public-access", "sg-revoke-open-ingress"


def events_for(n, rng):
    """[(function, bytes, resource or None)] for n findings, and how many are fixes."""
    s3_raw = (ROOT / "events" / S3 / SCENARIOS[0].sample).read_text()
    sg_raw = (ROOT / "events" / SG / SCENARIOS[1].sample).read_text()
    hostile = sorted((ROOT / "events" / "hostile").glob("*.json"))
    n_s3 = n_sg = n * 4 // 10
    n_dup = n // 10
    n_hostile = n - n_s3 - n_sg - n_dup
    fixes = []
    for i in range(n_s3):
        bucket = "bench-b-%05d" % i
        text = s3_raw.replace(SAMPLE_BUCKET, bucket).replace(GD_FINDING_ID, "%032x" % (i + 1))
        fixes.append((S3, text.encode(), bucket))
    for i in range(n_sg):
        # The group is made later; its id is filled in then (placeholder: the sample's id + index).
        event = json.loads(sg_raw)
        event["detail"]["findings"][0]["Id"] += "-bench-%05d" % i
        fixes.append((SG, json.dumps(event).replace(SAMPLE_GROUP, "{GROUP%05d}" % i).encode(), "{GROUP%05d}" % i))
    dups = [rng.choice(fixes) for _ in range(n_dup)]
    hostiles = [
        (S3 if i % 2 == 0 else SG, hostile[i % len(hostile)].read_bytes(), None)
        for i in range(n_hostile)
    ]
    everything = fixes + dups + hostiles
    rng.shuffle(everything)
    return everything, len(fixes)


def make_resources(emu, events):
    """The buckets and groups the events name (untimed); the events with the groups' real ids."""
    buckets = sorted({r for f, _, r in events if f == S3 and r})
    placeholders = sorted({r for f, _, r in events if f == SG and r})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(emu.public_bucket, buckets))
        ids = list(pool.map(lambda p: emu.open_group("bench-" + p.strip("{}"), rules=2), placeholders))
    group_of = dict(zip(placeholders, ids))
    out = []
    for f, raw, r in events:
        if f == SG and r:
            raw = raw.replace(r.encode(), group_of[r].encode())
            r = group_of[r]
        out.append((f, raw, r))
    return out


def run(args, emu, report):
    n = args.findings
    rng = random.Random(14)
    la = load()
    emu.reset()
    started = time.monotonic()
    events, n_fixes = events_for(n, rng)
    events = make_resources(emu, events)
    print("  throughput: %d findings (%d fixes), resources made in %.0f s" % (n, n_fixes, time.monotonic() - started), flush=True)

    per_function = args.concurrency // 2
    procs = {
        f: [FunctionProcess(args.target / f, f, emu.endpoint, emu.env) for _ in range(per_function)]
        for f in (S3, SG)
    }
    # Each process has a Runtime API of its own; one harness thread per process hands it the
    # next event of its function's queue as soon as it has answered the last (Lambda's model:
    # an instance takes one event at a time).
    answers = queue.Queue()
    lost = []
    try:
        for f in procs:
            for p in procs[f]:
                p.wait_ready()
        work = {f: queue.Queue() for f in procs}
        for f, raw, r in events:
            work[f].put(raw)

        def worker(p, f):
            while True:
                try:
                    raw = work[f].get_nowait()
                except queue.Empty:
                    return
                try:
                    took, kind, body = p.api.invoke(raw, timeout=120)
                    answers.put((f, kind, body, raw))
                    if busy(kind, body):
                        # A duplicate met the live claim of the first delivery: "retry later",
                        # and Lambda's retry delivers it again.
                        work[f].put(raw)
                except Exception as e:  # noqa: BLE001: counted as lost, reported below
                    lost.append("%s: %s" % (f, e))

        t0 = time.monotonic()
        threads = [threading.Thread(target=worker, args=(p, f)) for f in procs for p in procs[f]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
    finally:
        rss = [p.stop() for f in procs for p in procs[f]]

    answered = []
    while not answers.empty():
        answered.append(answers.get())
    kinds = Counter(k for _, k, _, _ in answered)
    report.row("throughput, reflex (%d at a time)" % args.concurrency, "%d findings" % n, "%.0f findings/s, %.0f fixes/s, %.1f s" % (n / wall, n_fixes / wall, wall), la, 1)
    report.row("peak RSS, function process", "throughput run", "%.1f MB max" % max(rss), la, len(rss))
    problems = check_table(emu, events, answered, lost, kinds)
    refused = sum(1 for _, kind, _, raw in answered if kind != "response" and not is_json(raw))
    report.row(
        "throughput checks",
        "every record",
        "; ".join(problems) if problems else "0 lost, 0 done twice, %d records checked (%d non-JSON events refused by the runtime, %d duplicates told to retry later and retried)" % (count_records(emu), refused, sum(1 for _, k, b, _ in answered if busy(k, b))),
        la,
        1,
    )

    # The emulator's capacity for the same calls, from bare clients.
    # A rate: a sample of the fixes is enough, and keeps the run short.
    floor_fixes = min(n_fixes, 2000)
    rate, differ = emulator_capacity(args, emu, floor_fixes, rng)
    report.row("emulator capacity (bare clients)", "%d fixes' calls" % floor_fixes, "%.0f fixes/s" % rate, la, 1)
    report.row("throughput ratio (fixes/s)", "reflex / emulator", "%.2f" % ((n_fixes / wall) / rate), load(), 0)
    if differ:
        report.note("capacity run: answers that differ from the recording: %s" % ", ".join(sorted(differ)[:10]))


def count_records(emu):
    return sum(1 for item in scan(emu) if "status" in item)


def scan(emu):
    pages = emu.ddb.get_paginator("scan").paginate(TableName="reflex-outcomes")
    for page in pages:
        for item in page["Items"]:
            yield item


def value(attr):
    if attr is None:
        return None
    (kind, v), = attr.items()
    if kind == "N":
        return int(float(v))
    if kind == "L":
        return [value(x) for x in v]
    if kind == "M":
        return {k: value(x) for k, x in v.items()}
    return v


def busy(kind, body):
    return kind == "error" and isinstance(body, dict) and body.get("errorType") == "Reflex.RecordBusy"


def is_json(raw):
    try:
        json.loads(raw)
        return True
    except ValueError:
        return False


def check_table(emu, events, answered, lost, kinds):
    """Every finding answered, one record per fix, succeeded once; every delivery counted."""
    problems = []
    if lost:
        problems.append("%d invocations lost (%s)" % (len(lost), lost[0]))
    retried = sum(1 for _, kind, body, _ in answered if busy(kind, body))
    if len(answered) - retried != len(events):
        problems.append("%d answers (%d retried) for %d events" % (len(answered), retried, len(events)))
    for f, kind, body, raw in answered:
        if busy(kind, body):
            continue
        # An event that is not JSON never reaches the handler: the runtime answers an error
        # (Lambda's retries, then the on-failure destination, keep it). Anything else is a problem.
        if kind != "response" and is_json(raw):
            problems.append("%s answered %s: %s" % (f, kind, str(body)[:200]))
    deliveries_sent = Counter(r for _, _, r in events if r)
    resource_of = {raw: r for _, raw, r in events if r}
    deliveries_sent.update(resource_of[raw] for _, kind, body, raw in answered if busy(kind, body))
    records = [{k: value(v) for k, v in item.items()} for item in scan(emu)]
    by_resource = Counter()
    budget_counts = Counter()
    deliveries_seen = 0
    for rec in records:
        if not rec.get("status"):
            continue  # the budget's counters, not records
        deliveries_seen += rec.get("deliveries") or 0
        status = rec.get("status")
        if status not in ("succeeded", "rejected", "skipped"):
            problems.append("%s: %s/%s" % (rec.get("record_id"), status, rec.get("reason")))
        arn = rec.get("resource_arn") or ""
        res = arn.rsplit(":::", 1)[-1] if arn.startswith("arn:aws:s3") else arn.rsplit("/", 1)[-1]
        if res in deliveries_sent:
            by_resource[res] += 1
            if status != "succeeded":
                problems.append("%s: %s/%s" % (res, status, rec.get("reason")))
            if (rec.get("attempts") or 0) != 1:
                problems.append("%s: %s attempts" % (res, rec.get("attempts")))
            if (rec.get("deliveries") or 0) != deliveries_sent[res]:
                problems.append("%s: %s deliveries recorded, %d sent" % (res, rec.get("deliveries"), deliveries_sent[res]))
            # The same call with the same parameters twice would be a change done twice (a group
            # with two open rules is rightly revoked twice, once per rule).
            calls = Counter(json.dumps([a.get("api"), a.get("parameters")], sort_keys=True) for a in rec.get("actions") or [])
            twice = [c for c, n in calls.items() if n > 1]
            if twice:
                problems.append("%s: done twice: %s" % (res, twice[0][:120]))
            budget = rec.get("budget") or {}
            if budget.get("count") is None:
                problems.append("%s: no budget unit recorded" % res)
            else:
                budget_counts[(rec.get("remediation"), budget.get("window"), budget.get("count"))] += 1
    missing = [r for r in deliveries_sent if by_resource[r] == 0]
    extra = [r for r, c in by_resource.items() if c > 1]
    if missing:
        problems.append("%d fixes without a record (%s…)" % (len(missing), missing[0]))
    if extra:
        problems.append("%d resources with more than one record" % len(extra))
    shared = [k for k, c in budget_counts.items() if c > 1]
    if shared:
        problems.append("%d budget units reserved twice" % len(shared))
    handled = sum(1 for _, kind, body, _ in answered if kind == "response" or busy(kind, body))
    if deliveries_seen != handled:
        problems.append("%d deliveries recorded for %d events handled" % (deliveries_seen, handled))
    return problems[:8]


FRESH = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32,64}")


def emulator_capacity(args, emu, n_fixes, rng):
    """Fixes per second when bare clients send the recorded calls of each fix, `concurrency`
    fixes at a time, on fresh resources; record keys, tokens and ids made fresh per fix."""
    recorded = {}
    for sc in SCENARIOS:
        calls, subst = record_calls(args, emu, sc)
        recorded[sc.function] = (calls, subst)
    emu.reset()
    jobs = queue.Queue()
    half = n_fixes // 2
    buckets = ["cap-b-%05d" % i for i in range(half)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(emu.public_bucket, buckets))
        groups = list(pool.map(lambda i: emu.open_group("cap-%05d" % i, rules=2), range(n_fixes - half)))
    for b in buckets:
        jobs.put((S3, [(SAMPLE_BUCKET, b)] if b != SAMPLE_BUCKET else []))
    for g in groups:
        jobs.put((SG, remap(recorded[SG][1], [(SAMPLE_GROUP, g)] + emu.group_rules(g))))
    differ = set()

    def worker():
        client = BareClient(emu.endpoint)
        while True:
            try:
                f, mapping = jobs.get_nowait()
            except queue.Empty:
                client.close()
                return
            calls = recorded[f][0]
            fresh = {}
            for c in calls:
                for m in FRESH.findall(c.body or b""):
                    fresh.setdefault(m.decode(), secrets.token_hex(32)[: len(m)] if b"-" not in m else str(uuid.uuid4()))
            _, d = client.replay(calls, mapping + sorted(fresh.items()))
            differ.update(d)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return n_fixes / (time.monotonic() - t0), differ
