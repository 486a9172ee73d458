#!/usr/bin/env python3
"""Multi-host fault test of the purge guarantees (DESIGN.md, Guarantees 1-4).

Every node runs in its own network namespace on a private bridge that this
script creates and removes: an origin, a coordinator, three edges and a
client. The bridge itself lives in a namespace of its own, so nothing is
reachable from (or sent to) the root namespace or any other address.

While clients read through all edges and a purger changes content at the
origin and purges it (every selector and mode, wait=all), faults are injected
at random: an edge partitioned from the coordinator, from the origin or both
(iptables), an edge or the coordinator SIGKILLed and restarted, an edge
SIGSTOPped and resumed, packet loss (iptables statistic). Every read, purge
and fault is recorded; the checker then verifies:

  1. after a purge completed, no read that started later returned a version
     older than the origin had when the purge was issued, for any object the
     purge matched (no stale read after a completed purge);
  2+3. every acknowledged purge is still in the coordinator's log and was
     applied by every edge once the faults healed (nothing lost, catch-up);
  4. every body served verified against its checksum (nothing corrupt).

  tests/fault/fault_test.py --bin build-asan --duration 90     (the test command runs this)
  tests/fault/fault_test.py --bin build --duration 1800        (a long run)
  tests/fault/fault_test.py check --dir /tmp/tern-fault-XXXX   (check a run kept with --keep)

Needs root (network namespaces, iptables). Exit 0: no violation; 1: a
violation or the run failed; 77: not root (skipped).
"""
import argparse
import bisect
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOSTS = ["h1.test", "h2.test"]
DIRS = ["a", "b"]
PER_DIR = 6
OBJECTS = [(h, f"/{d}/{i}") for h in HOSTS for d in DIRS for i in range(PER_DIR)]


def tags_of(host, path):
    i = int(path.rsplit("/", 1)[1])
    return [f"t{i % 3}", "all-objects"]


def body_of(host, path, version):
    payload = f"{host}{path}|v{version}|" + ("x" * (200 + (hash(path) % 300)))
    digest = hashlib.sha256(payload.encode()).hexdigest()
    return f"{payload}|{digest}".encode()


def verify_body(data):
    """Returns the version in a body, or None if it does not verify."""
    try:
        text = data.decode()
        payload, digest = text.rsplit("|", 1)
        if hashlib.sha256(payload.encode()).hexdigest() != digest:
            return None
        return int(payload.split("|")[1][1:])
    except Exception:
        return None


# --------------------------------------------------------------------- origin
def run_origin(port):
    versions = {o: 1 for o in OBJECTS}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            u = urllib.parse.urlparse(self.path)
            q = urllib.parse.parse_qs(u.query)
            if u.path != "/admin/bump":
                self.send_error(404)
                return
            out = {}
            with lock:
                for spec in q.get("o", []):
                    host, path = spec.split(":", 1)
                    versions[(host, path)] += 1
                    out[spec] = versions[(host, path)]
            data = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            host = self.headers.get("Host", "").split(":")[0]
            key = (host, urllib.parse.urlparse(self.path).path)
            with lock:
                v = versions.get(key)
            if v is None:
                self.send_error(404)
                return
            etag = f'"v{v}"'
            common = [("ETag", etag), ("Cache-Control", "max-age=3600"),
                      ("Surrogate-Key", " ".join(tags_of(*key)))]
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                for k, val in common:
                    self.send_header(k, val)
                self.end_headers()
                return
            data = body_of(host, key[1], v)
            self.send_response(200)
            for k, val in common:
                self.send_header(k, val)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


# ------------------------------------------------------------------- workload
def run_workload(args):
    edges = args.edges.split(",")
    coord = args.coordinator
    stop_at = time.time() + args.duration
    out = open(args.history, "w", buffering=1)
    out_lock = threading.Lock()

    def record(kind, **kw):
        kw["kind"] = kind
        with out_lock:
            out.write(json.dumps(kw) + "\n")

    def request(host_port, method, path, headers=None, body=None, timeout=5):
        h, p = host_port.split(":")
        c = http.client.HTTPConnection(h, int(p), timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()

    def reader(n):
        rnd = random.Random(n)
        while time.time() < stop_at:
            edge = rnd.choice(edges)
            host, path = rnd.choice(OBJECTS)
            t0 = time.time()
            try:
                st, hdrs, data = request(edge, "GET", path, {"Host": host}, timeout=4)
                t1 = time.time()
                version = verify_body(data) if st == 200 else None
                record("read", t0=t0, t1=t1, edge=edge, host=host, path=path, status=st,
                       version=version, corrupt=(st == 200 and version is None),
                       cache=hdrs.get("cache-status", ""))
            except Exception as e:
                record("read", t0=t0, t1=time.time(), edge=edge, host=host, path=path,
                       status=0, error=str(e)[:80])
            time.sleep(rnd.uniform(0.002, 0.02))

    def purger():
        rnd = random.Random(1000)
        auth = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"}
        while time.time() < stop_at:
            kind = rnd.choice(["url", "prefix", "host", "tag", "all"])
            mode = rnd.choice(["hard", "soft"])
            host = rnd.choice(HOSTS)
            d = rnd.choice(DIRS)
            if kind == "url":
                obj = (host, f"/{d}/{rnd.randrange(PER_DIR)}")
                sel = {"url": f"{obj[0]}{obj[1]}"}
            elif kind == "prefix":
                sel = {"prefix": f"{host}/{d}/"}
            elif kind == "host":
                sel = {"host": host}
            elif kind == "tag":
                sel = {"tag": f"t{rnd.randrange(3)}"}
            else:
                sel = {"all": True}
            matched = [o for o in OBJECTS if matches(sel, o)]
            # New content at the origin for what the purge matches (sometimes
            # not: a soft purge of unchanged content must still serve it).
            if rnd.random() < 0.8:
                bump = rnd.sample(matched, min(len(matched), 6))
                q = "&".join("o=" + urllib.parse.quote(f"{h}:{p}") for h, p in bump)
                try:
                    st, _, data = request(args.origin, "POST", "/admin/bump?" + q, timeout=5)
                    if st == 200:
                        record("bump", t=time.time(), versions=json.loads(data))
                except Exception as e:
                    record("bump_failed", t=time.time(), error=str(e)[:80])
            body = json.dumps({"selectors": [sel], "mode": mode, "wait": "all",
                               "timeout_ms": 8000, "idempotency_key": f"k{time.time_ns()}"})
            t0 = time.time()
            for attempt in range(3):  # retried with the same key: idempotent
                try:
                    st, _, data = request(coord, "POST", "/v1/purge", auth, body, timeout=15)
                    res = json.loads(data) if data else {}
                    record("purge", t0=t0, t1=time.time(), selector=sel, mode=mode, status=st,
                           seq=res.get("seq"), state=res.get("state"),
                           edges=res.get("edges", []))
                    break
                except Exception as e:
                    if attempt == 2:
                        record("purge", t0=t0, t1=time.time(), selector=sel, mode=mode,
                               status=0, error=str(e)[:80])
                    time.sleep(0.5)
            time.sleep(rnd.uniform(0.05, 0.3))

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(args.readers)]
    threads.append(threading.Thread(target=purger))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Convergence: once faults have healed, every edge applies everything.
    deadline = time.time() + 60
    final = None
    while time.time() < deadline:
        try:
            st, _, data = request(coord, "GET", "/v1/edges",
                                  {"Authorization": f"Bearer {args.token}"}, timeout=5)
            if st == 200:
                final = json.loads(data)
                if len(final["edges"]) == len(edges) and all(
                        e["applied_seq"] >= final["head_seq"] for e in final["edges"]):
                    break
        except Exception:
            pass
        time.sleep(0.5)
    record("final_edges", state=final)
    # Every acknowledged purge is still in the log.
    acked = set()
    with open(args.history) as f:
        for line in f:
            r = json.loads(line)
            if r["kind"] == "purge" and r.get("seq"):
                acked.add(r["seq"])
    missing = []
    for seq in sorted(acked):
        try:
            st, _, _ = request(coord, "GET", f"/v1/purges/{seq}",
                               {"Authorization": f"Bearer {args.token}"}, timeout=5)
            if st != 200:
                missing.append(seq)
        except Exception:
            missing.append(seq)
    record("log_check", acked=len(acked), missing=missing)
    out.close()


def matches(sel, obj):
    host, path = obj
    if "all" in sel:
        return True
    if "url" in sel:
        return sel["url"] == host + path
    if "prefix" in sel:
        return (host + path).startswith(sel["prefix"])
    if "host" in sel:
        return sel["host"] == host
    if "tag" in sel:
        return sel["tag"] in tags_of(host, path)
    return False


# -------------------------------------------------------------------- checker
def check(history_path, faults):
    reads, purges, bumps = [], [], []
    final, log_check = None, None
    with open(history_path) as f:
        for line in f:
            r = json.loads(line)
            k = r["kind"]
            if k == "read":
                reads.append(r)
            elif k == "purge":
                purges.append(r)
            elif k == "bump":
                bumps.append(r)
            elif k == "final_edges":
                final = r["state"]
            elif k == "log_check":
                log_check = r
    violations = []
    # Version each object had at the origin at a time t (bumps completed by t).
    history = {o: [(0.0, 1)] for o in OBJECTS}
    for b in sorted(bumps, key=lambda b: b["t"]):
        for spec, v in b["versions"].items():
            h, p = spec.split(":", 1)
            history[(h, p)].append((b["t"], v))

    bump_times = {o: [tb for tb, _ in h] for o, h in history.items()}
    bump_max = {}
    for o, h in history.items():
        acc, m = [], 0
        for _, vb in h:
            m = max(m, vb)
            acc.append(m)
        bump_max[o] = acc

    def version_at(obj, t):
        i = bisect.bisect_right(bump_times[obj], t)
        return bump_max[obj][i - 1] if i > 0 else 1

    # Guarantee 1. Per object, reads sorted by start time with the minimum
    # version from each read on: a purge is violated if some read that
    # started after it completed has a version below what it required.
    completed = [p for p in purges if p.get("state") == "complete"]
    by_obj = {o: [] for o in OBJECTS}
    for r in reads:
        if r.get("status") == 200 and r.get("version") is not None:
            by_obj[(r["host"], r["path"])].append(r)
    starts, suffix_min = {}, {}
    for obj, rs in by_obj.items():
        rs.sort(key=lambda r: r["t0"])
        starts[obj] = [r["t0"] for r in rs]
        mins, m = [0] * len(rs), 1 << 62
        for i in range(len(rs) - 1, -1, -1):
            m = min(m, rs[i]["version"])
            mins[i] = m
        suffix_min[obj] = mins
    for p in completed:
        for obj in OBJECTS:
            if not matches(p["selector"], obj):
                continue
            need = version_at(obj, p["t0"])
            i = bisect.bisect_right(starts[obj], p["t1"])
            if i >= len(by_obj[obj]) or suffix_min[obj][i] >= need:
                continue
            for r in by_obj[obj][i:]:
                if r["version"] < need:
                    violations.append(
                        f"stale read: {obj[0]}{obj[1]} v{r['version']} from {r['edge']} at "
                        f"{r['t0']:.3f}, after purge {p['seq']} ({p['selector']}, {p['mode']}) "
                        f"completed at {p['t1']:.3f} when the origin had v{need} "
                        f"[cache-status: {r.get('cache')}]")
                    break
    # Guarantee 4.
    corrupt = [r for r in reads if r.get("corrupt")]
    for r in corrupt:
        violations.append(f"corrupt body: {r['host']}{r['path']} from {r['edge']} at {r['t0']:.3f}")
    # Guarantees 2 and 3.
    acked = [p for p in purges if p.get("seq")]
    max_seq = max([p["seq"] for p in acked], default=0)
    if final is None:
        violations.append("could not read the edges' state at the end")
    else:
        for e in final["edges"]:
            if e["applied_seq"] < max_seq:
                violations.append(f"edge {e['edge_id']} applied {e['applied_seq']} < acknowledged {max_seq}")
    if log_check is None:
        violations.append("log check did not run")
    elif log_check["missing"]:
        violations.append(f"acknowledged purges missing from the log: {log_check['missing'][:10]}")

    ok_reads = sum(1 for r in reads if r.get("status") == 200)
    print(f"reads: {len(reads)} ({ok_reads} ok, "
          f"{sum(1 for r in reads if 'hit' in r.get('cache', ''))} hits, "
          f"{sum(1 for r in reads if r.get('status') != 200)} errors/unavailable)")
    states = {}
    for p in purges:
        states[p.get("state") or f"error {p.get('status')}"] = states.get(p.get("state") or f"error {p.get('status')}", 0) + 1
    print(f"purges: {len(purges)} {states}; content changes: {len(bumps)}")
    kinds = {}
    for f_ in faults:
        kinds[f_["fault"]] = kinds.get(f_["fault"], 0) + 1
    print(f"faults: {len(faults)} {kinds}")
    print(f"violations: {len(violations)}")
    for v in violations[:50]:
        print("  " + v)
    return not violations


# --------------------------------------------------------------- orchestrator
class Cluster:
    def __init__(self, binaries, work, token):
        self.bin = binaries
        self.work = work
        self.token = token
        tag = f"{os.getpid() % 100000:05d}"
        self.prefix = f"tf{tag}"
        self.subnet = f"10.{random.randrange(64, 250)}.{random.randrange(1, 250)}"
        self.nodes = {}  # name -> (ns, ip)
        self.procs = {}  # name -> Popen
        self.cmds = {}

    def sh(self, *cmd, check=True):
        return subprocess.run(cmd, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def ns(self, name):
        return self.nodes[name][0]

    def ip(self, name):
        return self.nodes[name][1]

    def setup(self, names):
        sw = f"{self.prefix}sw"
        self.sh("ip", "netns", "add", sw)
        self.nodes["_switch"] = (sw, None)
        self.sh("ip", "netns", "exec", sw, "ip", "link", "add", "br0", "type", "bridge")
        self.sh("ip", "netns", "exec", sw, "ip", "link", "set", "br0", "up")
        for i, name in enumerate(names):
            ns = f"{self.prefix}{name}"
            ip = f"{self.subnet}.{i + 10}"
            self.sh("ip", "netns", "add", ns)
            self.nodes[name] = (ns, ip)
            a, b = f"{self.prefix}{i}a", f"{self.prefix}{i}b"
            self.sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            self.sh("ip", "link", "set", a, "netns", ns)
            self.sh("ip", "link", "set", b, "netns", sw)
            self.sh("ip", "netns", "exec", sw, "ip", "link", "set", b, "master", "br0")
            self.sh("ip", "netns", "exec", sw, "ip", "link", "set", b, "up")
            self.sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/24", "dev", a)
            self.sh("ip", "netns", "exec", ns, "ip", "link", "set", a, "up")
            self.sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    def start(self, name, cmd):
        self.cmds[name] = cmd
        log = open(os.path.join(self.work, f"{name}.log"), "ab")
        self.procs[name] = subprocess.Popen(["ip", "netns", "exec", self.ns(name)] + cmd,
                                            stdout=log, stderr=subprocess.STDOUT)

    def restart(self, name):
        self.start(name, self.cmds[name])

    def kill(self, name, sig=signal.SIGKILL):
        p = self.procs.get(name)
        if p and p.poll() is None:
            p.send_signal(sig)
            if sig == signal.SIGKILL:
                p.wait()

    def iptables(self, name, *rule):
        self.sh("ip", "netns", "exec", self.ns(name), "iptables", *rule)

    def teardown(self):
        for name, p in self.procs.items():
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.kill()
                    p.wait(timeout=10)
                except Exception:
                    pass
        for name, (ns, _) in self.nodes.items():
            self.sh("ip", "netns", "del", ns, check=False)


def wait_port(cluster, name, port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = subprocess.run(["ip", "netns", "exec", cluster.ns(name), "python3", "-c",
                            f"import socket; socket.create_connection(('127.0.0.1', {port}), 1)"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            return True
        time.sleep(0.2)
    return False


def orchestrate(args):
    if os.geteuid() != 0:
        print("fault test: needs root (network namespaces, iptables); skipped")
        return 77
    for tool in ("ip", "iptables"):
        if not shutil.which(tool):
            print(f"fault test: {tool} is missing (tools/deps installs it)")
            return 1
    binaries = os.path.abspath(args.bin)
    edge_bin = os.path.join(binaries, "edge", "tern-edge")
    coord_bin = os.path.join(binaries, "coordinator", "tern-coordinator")
    work = tempfile.mkdtemp(prefix="tern-fault-")
    token = "fault-token"
    rnd = random.Random(args.seed)
    c = Cluster(binaries, work, token)
    edges = ["e1", "e2", "e3"]
    faults = []
    ok = False

    def on_signal(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)
    try:
        c.setup(["origin", "coord", "client"] + edges)
        me = os.path.abspath(__file__)
        c.start("origin", [sys.executable, me, "origin", "--port", "8081"])
        c.start("coord", [coord_bin, "--listen", "0.0.0.0:8470", "--grpc_listen", "0.0.0.0:8471",
                          "--data_dir", os.path.join(work, "coord-data"), "--lease", "1s",
                          "--auth.token", token, "--rate.purges_per_sec", "0"])
        for e in edges:
            c.start(e, [edge_bin, "--listen", "0.0.0.0:8080", "--admin_listen", "127.0.0.1:9080",
                        "--origin", f"http://{c.ip('origin')}:8081",
                        "--cache.dir", os.path.join(work, f"{e}-cache"),
                        "--cache.min_free_disk", "1MiB", "--server.loops", "1",
                        "--coordinator.address", f"{c.ip('coord')}:8471",
                        "--coordinator.token", token, "--coordinator.edge_id", e,
                        "--origin_connect_timeout", "1s", "--origin_read_timeout", "3s",
                        "--log.access", "false"])
        for name, port in [("origin", 8081), ("coord", 8470)] + [(e, 8080) for e in edges]:
            if not wait_port(c, name, port):
                raise RuntimeError(f"{name} did not start")
        history = os.path.join(work, "history.jsonl")
        c.start("client", [sys.executable, me, "workload", "--duration", str(args.duration),
                           "--edges", ",".join(f"{c.ip(e)}:8080" for e in edges),
                           "--coordinator", f"{c.ip('coord')}:8470",
                           "--origin", f"{c.ip('origin')}:8081", "--token", token,
                           "--history", history, "--readers", str(args.readers)])
        workload = c.procs["client"]
        time.sleep(2)
        end = time.time() + args.duration - 8  # the last seconds run without faults
        kinds = ["partition_coord", "partition_origin", "partition_both", "kill_edge",
                 "kill_coord", "stop_edge", "packet_loss"]
        while time.time() < end and workload.poll() is None:
            kind = rnd.choice(kinds)
            target = rnd.choice(edges)
            hold = rnd.uniform(1.0, 4.0)
            t0 = time.time()
            if kind.startswith("partition"):
                peers = {"partition_coord": ["coord"], "partition_origin": ["origin"],
                         "partition_both": ["coord", "origin"]}[kind]
                for peer in peers:
                    c.iptables(target, "-A", "INPUT", "-s", c.ip(peer), "-j", "DROP")
                    c.iptables(target, "-A", "OUTPUT", "-d", c.ip(peer), "-j", "DROP")
                time.sleep(hold)
                c.iptables(target, "-F")
            elif kind == "packet_loss":
                c.iptables(target, "-A", "INPUT", "-m", "statistic", "--mode", "random",
                           "--probability", "0.3", "-j", "DROP")
                time.sleep(hold)
                c.iptables(target, "-F")
            elif kind == "kill_edge":
                c.kill(target)
                time.sleep(hold)
                c.restart(target)
            elif kind == "kill_coord":
                target = "coord"
                c.kill("coord")
                time.sleep(hold / 2)
                c.restart("coord")
            elif kind == "stop_edge":
                c.kill(target, signal.SIGSTOP)
                time.sleep(hold)
                c.kill(target, signal.SIGCONT)
            faults.append({"fault": kind, "target": target, "t0": t0, "t1": time.time()})
            time.sleep(rnd.uniform(0.5, 2.5))
        workload.wait(timeout=args.duration + 180)
        with open(os.path.join(work, "faults.json"), "w") as f:
            json.dump(faults, f)
        ok = check(history, faults)
        if not ok or args.keep:
            print(f"history and logs kept in {work}")
        for name in edges + ["coord"]:
            with open(os.path.join(work, f"{name}.log"), "rb") as f:
                text = f.read().decode(errors="replace")
            if "AddressSanitizer" in text or "runtime error" in text:
                print(f"{name}: sanitizer report in {work}/{name}.log")
                ok = False
    except KeyboardInterrupt:
        print("interrupted")
    except Exception as e:
        print(f"fault test failed to run: {e}")
    finally:
        c.teardown()
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("role", nargs="?", default="run", choices=["run", "origin", "workload", "check"])
    ap.add_argument("--dir", help="with 'check': a run kept with --keep")
    ap.add_argument("--bin", default="build", help="build tree with edge/ and coordinator/")
    ap.add_argument("--duration", type=int, default=90, help="seconds of workload")
    ap.add_argument("--readers", type=int, default=6)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--keep", action="store_true", help="keep history and logs")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--edges")
    ap.add_argument("--coordinator")
    ap.add_argument("--origin")
    ap.add_argument("--token")
    ap.add_argument("--history")
    args = ap.parse_args()
    if args.role == "origin":
        run_origin(args.port)
        return 0
    if args.role == "workload":
        run_workload(args)
        return 0
    if args.role == "check":
        with open(os.path.join(args.dir, "faults.json")) as f:
            faults = json.load(f)
        return 0 if check(os.path.join(args.dir, "history.jsonl"), faults) else 1
    print(f"fault test: seed {args.seed}, {args.duration}s")
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
