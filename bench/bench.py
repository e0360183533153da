"""The benchmark harness (run by scripts/bench, which builds the binaries and starts the emulator).

Every figure is min / median / max over a fixed number of runs, each run on a freshly reset
emulator with the same resources, and is printed with the load average at the time. Nothing here
is a test: no figure is asserted; a run whose fix did not happen is an error, though, since its
time would mean nothing.
"""

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import boto3

from calls import BareClient, RecordingProxy, rounds
from runtime_api import RuntimeApi, lambda_env

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SAMPLE_BUCKET = "reflex-demo-public"
SAMPLE_GROUP = "sg-0123456789abcdef0"


# ---------------------------------------------------------------- processes, timing, statistics


def load():
    return "%.2f" % os.getloadavg()[0]


def run_child(argv, env, stdin=None):
    """Run a whole process; (wall seconds, peak RSS in MB, exit code, stdout, stderr).

    The peak RSS comes from /usr/bin/time, not from this process's wait4: Linux keeps a
    child's high-water mark across exec, so a child forked from this (large) Python process
    would report at least the harness's own size. /usr/bin/time is small; its fork and exec
    add about a millisecond to the wall time, the same for every tool measured."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss:
        start = time.monotonic()
        p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss.name] + argv, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        p.wait()
        wall = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        peak_kb = int(rss.read().strip().splitlines()[-1] or 0)
        return wall, peak_kb / 1024, p.returncode, out.read().decode(), err.read().decode()


def stats(values, unit="ms", scale=1000.0):
    v = sorted(x * scale for x in values)
    if not v:
        return "-"
    fmt = "%.1f" if v[-1] < 100 else "%.0f"
    return "%s / %s / %s %s" % (fmt % v[0], fmt % statistics.median(v), fmt % v[-1], unit)


def median(values):
    return statistics.median(values)


class Report:
    """The printed table, and the same rows as JSON for docs/benchmarks.md."""

    def __init__(self, path):
        self.rows, self.path, self.notes = [], path, []

    def row(self, figure, subject, value, load_avg, runs):
        self.rows.append(
            {"figure": figure, "subject": subject, "value": value, "load": load_avg, "runs": runs}
        )
        print("  %-34s %-34s %-32s load %s  (%d runs)" % (figure, subject, value, load_avg, runs), flush=True)

    def note(self, text):
        self.notes.append(text)
        print("  note: " + text, flush=True)

    def save(self, config):
        with open(self.path, "w") as f:
            json.dump({"config": config, "rows": self.rows, "notes": self.notes}, f, indent=1)


# ---------------------------------------------------------------- the emulator and the resources


class Emulator:
    def __init__(self, endpoint, reflex):
        self.endpoint = endpoint
        self.reflex = reflex
        self.env = dict(os.environ)
        session = boto3.session.Session(region_name="us-east-1")
        self.s3 = session.client("s3", endpoint_url=endpoint)
        self.ec2 = session.client("ec2", endpoint_url=endpoint)
        self.ssm = session.client("ssm", endpoint_url=endpoint)
        self.ddb = session.client("dynamodb", endpoint_url=endpoint)

    def reset(self):
        """Everything gone, then the outcome table and the policy, as a deployment has them."""
        req = urllib.request.Request(self.endpoint + "/moto-api/reset", data=b"", method="POST")
        urllib.request.urlopen(req).read()
        wall, _, code, out, err = run_child([self.reflex, "init"], self.env)
        if code != 0:
            raise RuntimeError("reflex init failed: %s%s" % (out, err))
        self.ssm.put_parameter(
            Name="/reflex/policy",
            Value=(BENCH / "policy.yaml").read_text(),
            Type="String",
            Overwrite=True,
        )

    def public_bucket(self, name=SAMPLE_BUCKET):
        self.s3.create_bucket(Bucket=name)
        self.s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": False,
                "IgnorePublicAcls": False,
                "BlockPublicPolicy": False,
                "RestrictPublicBuckets": False,
            },
        )

    def bucket_blocked(self, name=SAMPLE_BUCKET):
        c = self.s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        return all(c.get(k) for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"))

    def open_group(self, name="bench-bastion", rules=4):
        """SSH open to the world (IPv4 and IPv6), SSH from a private range, HTTPS from the world."""
        group = self.ec2.create_security_group(GroupName=name, Description="bench: SSH open")["GroupId"]
        perms = [
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        ][:rules]
        for p in perms:
            self.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[p])
        return group

    def group_rules(self, group):
        """[(port and range, rule id)]: a revoke names its rules by id, so a replay of recorded
        calls maps the recording's ids to a new group's."""
        rules = self.ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])
        return sorted(
            ("%s %s %s" % (r.get("FromPort"), r.get("CidrIpv4") or r.get("CidrIpv6"), r.get("IsEgress")), r["SecurityGroupRuleId"])
            for r in rules["SecurityGroupRules"]
        )

    def ssh_closed(self, group):
        g = self.ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
        for p in g["IpPermissions"]:
            if p.get("FromPort") == 22:
                if any(r["CidrIp"] == "0.0.0.0/0" for r in p.get("IpRanges", [])):
                    return False
                if any(r["CidrIpv6"] == "::/0" for r in p.get("Ipv6Ranges", [])):
                    return False
        return True


class Scenario:
    """One fix: how to make its resource, its event, how to check it was fixed."""

    def __init__(self, function, sample, custodian):
        self.function, self.sample, self.custodian = function, sample, custodian
        self.raw = (ROOT / "events" / function / sample).read_text()

    def prepare(self, emu):
        """Reset the emulator, make the resource; (event text, substitutions, check)."""
        emu.reset()
        if self.function == "s3-block-public-access":
            emu.public_bucket()
            return self.raw, [], emu.bucket_blocked
        group = emu.open_group()
        subst = [(SAMPLE_GROUP, group)] + emu.group_rules(group)
        return self.raw.replace(SAMPLE_GROUP, group), subst, lambda: emu.ssh_closed(group)


SCENARIOS = [
    Scenario("s3-block-public-access", "guardduty-bucket-block-public-access-disabled.json", "s3-public-access-block.yml"),
    Scenario("sg-revoke-open-ingress", "securityhub-ec2.13-ssh-open.json", "sg-revoke-open-ssh.yml"),
]


# ---------------------------------------------------------------- function processes


class FunctionProcess:
    """A function's release binary started as Lambda starts it, against a Runtime API of its own."""

    def __init__(self, binary, function, endpoint, base_env):
        self.api = RuntimeApi()
        env = dict(base_env)
        env.update(lambda_env(self.api, function))
        env["AWS_ENDPOINT_URL"] = endpoint
        self.log = tempfile.TemporaryFile()
        self.started = time.monotonic()
        self.proc = subprocess.Popen([binary], env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout=30):
        """Seconds from exec to its first `next`: the cold start."""
        if not self.api.first_next.wait(timeout):
            raise RuntimeError("the function never asked for an event:\n" + self.output())
        return self.api.first_next_at - self.started

    def invoke(self, event_text):
        took, kind, body = self.api.invoke(event_text.encode())
        if kind != "response":
            raise RuntimeError("the function answered %s: %s\n%s" % (kind, body, self.output()))
        return took, body

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def stop(self):
        """Ends it; its peak RSS in MB (VmHWM, read before it ends: wait4's figure would carry
        the forking harness's own size, see run_child)."""
        peak_kb = 0
        try:
            for line in open("/proc/%d/status" % self.proc.pid):
                if line.startswith("VmHWM:"):
                    peak_kb = int(line.split()[1])
        except OSError:
            pass
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.api.close()
        return peak_kb / 1024


def outcome_statuses(body):
    """The statuses a handler's answer names (one per finding)."""
    text = json.dumps(body)
    return re.findall(r'"status": "([a-z-]+)"', text)


# ---------------------------------------------------------------- the figures


def whole_process(args, emu, sc, report, label, argv_for):
    """One tool as a whole process, exec to exit, once per run on fresh resources; the fix is
    read back after each. `argv_for(run, event file)` is its command line."""
    walls, rss = [], []
    la = load()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            event, _, fixed = sc.prepare(emu)
            path = Path(tmp) / sc.sample
            path.write_text(event)
            wall, peak, code, out, err = run_child(argv_for(i, path, tmp), emu.env)
            if code != 0 or not fixed():
                raise RuntimeError("%s did not fix it (exit %d):\n%s\n%s" % (label, code, out, err[-3000:]))
            walls.append(wall)
            rss.append(peak)
    report.row("fix, whole process (%s)" % label, sc.function, stats(walls), la, len(walls))
    report.row("peak RSS, %s" % label, sc.function, stats(rss, "MB", 1), la, len(rss))
    return walls, rss


def fix_by_replay(args, emu, sc, report):
    """`reflex replay` of one finding (STS, policy read, clients, the fix and its record)."""
    return whole_process(
        args, emu, sc, report, "reflex replay",
        lambda i, path, tmp: [args.reflex, "replay", str(path), "--function", sc.function, "--json"],
    )


def fix_by_custodian(args, emu, sc, report):
    """`custodian run` of the bench's policy for the same fix (it finds the resource itself)."""
    policy = str(BENCH / "custodian" / sc.custodian)
    return whole_process(
        args, emu, sc, report, "custodian run",
        lambda i, path, tmp: [args.custodian, "run", "-s", "%s/%d" % (tmp, i), "--region", "us-east-1", "--cache-period", "0", policy],
    )


def fix_warm(args, emu, sc, report):
    """The function's binary, warm: one event handed over to its answer, each on fresh resources."""
    binary = args.target / sc.function
    event, _, fixed = sc.prepare(emu)
    fp = FunctionProcess(binary, sc.function, emu.endpoint, emu.env)
    try:
        fp.wait_ready()
        fp.invoke(event)  # the cold start's first event: not counted
        la = load()
        times = []
        for _ in range(args.runs):
            event, _, fixed = sc.prepare(emu)
            took, body = fp.invoke(event)
            if "succeeded" not in outcome_statuses(body) or not fixed():
                raise RuntimeError("the warm function did not fix it: %s\n%s" % (body, fp.output()))
            times.append(took)
    finally:
        fp.stop()
    report.row("fix, warm handler (function binary)", sc.function, stats(times), la, len(times))
    return times


def record_calls(args, emu, sc, report=None):
    """The calls one warm fix makes (and one `reflex replay`), at a recording proxy; their rounds."""
    proxy = RecordingProxy(emu.endpoint)
    try:
        event, subst, fixed = sc.prepare(emu)
        fp = FunctionProcess(args.target / sc.function, sc.function, proxy.url, emu.env)
        try:
            fp.wait_ready()
            fp.invoke(event)
            event, subst, fixed = sc.prepare(emu)
            proxy.recording = True
            fp.invoke(event)
            proxy.recording = False
            warm_span = fp.api.last_invocation
        finally:
            fp.stop()
        warm = list(proxy.calls)
        proxy.calls.clear()
        # The whole process: what `reflex replay` adds before and around the same fix.
        event2, _, _ = sc.prepare(emu)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / sc.sample
            path.write_text(event2)
            env = dict(emu.env, AWS_ENDPOINT_URL=proxy.url)
            proxy.recording = True
            exec_at = time.monotonic()
            wall = run_child([args.reflex, "replay", str(path), "--function", sc.function, "--json"], env)[0]
            proxy.recording = False
        replay = list(proxy.calls)
        replay_span = (exec_at, exec_at + wall)
    finally:
        proxy.close()
    for label, calls, (begin, end) in (("warm handler", warm, warm_span), ("reflex replay", replay, replay_span)):
        if report is None or not calls:
            break
        rs = rounds(calls)
        first, last = min(c.start for c in calls), max(c.end for c in calls)
        durations = [max(c.end for c in r) - min(c.start for c in r) for r in rs]
        report.note(
            "%s, %s, where the time goes (one run, through the recording proxy): %.1f ms before the first call, "
            "%.1f ms from the first call's start to the last's end: rounds of %s ms, and %.1f ms between "
            "rounds (our own work); %.1f ms after the last"
            % (sc.function, label, (first - begin) * 1000, (last - first) * 1000,
               " + ".join("%.1f" % (d * 1000) for d in durations),
               ((last - first) - sum(durations)) * 1000, (end - last) * 1000)
        )
        report.note(
            "%s, %s: %d calls in %d sequential rounds: %s"
            % (sc.function, label, len(calls), len(rs),
               "; ".join("%d. %s" % (i + 1, " ∥ ".join("%s (%d)" % (c.name(), c.status) for c in r)) for i, r in enumerate(rs)))
        )
    return warm, subst


def remap(recorded, now):
    """The recording's resource ids mapped to this run's, by what each stands for."""
    then = dict(recorded)
    return [(then[k], v) for k, v in now if k in then and then[k] != v]


def api_floor(args, emu, sc, warm_calls, recorded_subst, report):
    """The warm fix's recorded requests, sent again back to back by a bare client."""
    times, differ = [], set()
    la = load()
    for _ in range(args.runs):
        event, subst, _ = sc.prepare(emu)
        mapping = remap(recorded_subst, subst)
        client = BareClient(emu.endpoint)
        try:
            took, d = client.replay(warm_calls, mapping)
        finally:
            client.close()
        differ.update(d)
        times.append(took)
    report.row("API floor (bare client, same calls)", sc.function, stats(times), la, len(times))
    if differ:
        report.note("%s: the bare client's answers that differ from the recording: %s" % (sc.function, ", ".join(sorted(differ))))
    return times


def cold_starts(args, emu, report, functions):
    """Exec of each function binary to its first `next` (whatever it does at init included:
    since the tuning, no AWS call; the policy's first read runs in the background and is paid,
    where it is not yet done, by the first event); for the scenarios, the first event too; peak
    RSS of the process after it."""
    scen = {s.function: s for s in SCENARIOS}
    for function in functions:
        ready, first, rss = [], [], []
        la = load()
        for _ in range(args.runs):
            sc = scen.get(function)
            if sc:
                event, _, fixed = sc.prepare(emu)
            else:
                emu.reset()
            fp = FunctionProcess(args.target / function, function, emu.endpoint, emu.env)
            try:
                ready.append(fp.wait_ready())
                if sc:
                    took, body = fp.invoke(event)
                    if "succeeded" not in outcome_statuses(body) or not fixed():
                        raise RuntimeError("cold function did not fix it: %s\n%s" % (body, fp.output()))
                    first.append(took)
            finally:
                rss.append(fp.stop())
        report.row("cold start (exec to ready)", function, stats(ready), la, len(ready))
        if first:
            report.row("first event after cold start", function, stats(first), la, len(first))
        report.row("peak RSS, function process", function, stats(rss, "MB", 1) + (" (1 fix)" if first else " (idle)"), la, len(rss))


def zip_sizes(args, report, functions):
    """Each function's release binary as Lambda's `bootstrap`, zipped (deflate, level 9): the
    x86_64 build, and the arm64 one where `scripts/bench --arm64` built it."""
    builds = [("x86_64", args.target)]
    arm = args.target.parent / "aarch64-unknown-linux-gnu" / "release"
    if arm.is_dir():
        builds.append(("arm64", arm))
    else:
        report.note("no arm64 build (scripts/bench --arm64 makes one): zip sizes are x86_64 only")
    with tempfile.TemporaryDirectory() as tmp:
        for arch, target in builds:
            for function in functions:
                binary = target / function
                if not binary.exists():
                    continue
                path = Path(tmp) / (arch + function + ".zip")
                with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
                    info = zipfile.ZipInfo("bootstrap")
                    info.external_attr = 0o755 << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    z.writestr(info, binary.read_bytes())
                report.row(
                    "zip (bootstrap, %s)" % arch,
                    function,
                    "%.2f MB zip, %.2f MB binary" % (path.stat().st_size / 1e6, binary.stat().st_size / 1e6),
                    load(),
                    1,
                )


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--findings", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--target", type=Path, required=True, help="directory of the release binaries")
    ap.add_argument("--custodian", required=True)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--only", default="", help="comma-separated: fix,custodian,cold,zip,throughput")
    args = ap.parse_args()
    args.reflex = str(args.target / "reflex")
    only = set(filter(None, args.only.split(",")))
    want = lambda part: not only or part in only  # noqa: E731

    functions = sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "Cargo.toml").exists())
    built = [f for f in functions if (args.target / f).exists()]
    emu = Emulator(os.environ["AWS_ENDPOINT_URL"], args.reflex)
    config = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "runs": args.runs,
        "findings": args.findings,
        "concurrency": args.concurrency,
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "load_at_start": " ".join("%.2f" % x for x in os.getloadavg()),
        "python": platform.python_version(),
        "endpoint": emu.endpoint,
        # Where the functions' TLS reads its trust roots at init (rustls-native-certs): every
        # file of an SSL_CERT_DIR is read, which shows in the cold start (docs/benchmarks.md).
        "ssl_cert_file": os.environ.get("SSL_CERT_FILE"),
        "ssl_cert_dir": os.environ.get("SSL_CERT_DIR"),
        "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
    }
    print("configuration: " + json.dumps(config), flush=True)
    report = Report(args.results)
    try:
        for sc in SCENARIOS:
            if sc.function not in built:
                report.note("%s not built: no fix or Custodian figures for it" % sc.function)
                continue
            if want("fix"):
                warm = fix_warm(args, emu, sc, report)
                calls, subst = record_calls(args, emu, sc, report)
                floor = api_floor(args, emu, sc, calls, subst, report)
                report.row("ratio warm / floor (medians)", sc.function, "%.2f" % (median(warm) / median(floor)), load(), 0)
            if want("custodian"):
                rw, rr = fix_by_replay(args, emu, sc, report)
                cw, cr = fix_by_custodian(args, emu, sc, report)
                report.row(
                    "custodian / reflex (medians)",
                    sc.function,
                    "%.1f× the time, %.1f× the peak RSS" % (median(cw) / median(rw), median(cr) / median(rr)),
                    load(),
                    0,
                )
        if built != functions:
            report.note("not built, so without cold start and zip: %s" % ", ".join(sorted(set(functions) - set(built))))
        if want("cold"):
            cold_starts(args, emu, report, built)
        if want("zip"):
            zip_sizes(args, report, built)
        if want("throughput"):
            import throughput

            throughput.run(args, emu, report)
    finally:
        report.save(config)
    print("results: %s" % args.results)


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
