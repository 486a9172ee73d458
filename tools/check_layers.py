#!/usr/bin/env python3
"""Checks the include directions of the project (the layering of Tern).

Each rule names a folder and what its files may include from the project and
from third-party libraries. A violation prints file:line and fails the run.
"""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')

# folder prefix -> (allowed project folders, forbidden third-party prefixes)
PROJECT = ("common/", "storage/", "edge/", "coordinator/", "proto/", "tests/", "bench/")
RULES = [
    ("common/net/", {"common/"}, ()),
    ("common/", {"common/"}, ("boost/beast", "boost/asio", "rocksdb/", "grpc", "google/protobuf")),
    ("storage/rocksdb/", {"common/", "storage/"}, ("boost/beast", "boost/asio", "grpc")),
    ("storage/", {"common/", "storage/"}, ("rocksdb/", "boost/beast", "boost/asio", "grpc")),
    ("edge/http/", {"common/"}, ("rocksdb/", "boost/beast", "boost/asio", "grpc")),
    # edge/cache sees the origin client only through its plain interface
    # (and the plain code that builds origin requests).
    ("edge/cache/", {"common/", "storage/", "edge/http/", "edge/cache/", "edge/origin/origin_client.h",
                     "edge/origin/origin_request.h"},
     ("rocksdb/", "boost/asio", "boost/beast", "grpc", "proto/")),
    ("edge/", {"common/", "storage/", "edge/", "proto/"}, ("rocksdb/",)),
    ("coordinator/ctl/", {"common/", "proto/", "coordinator/ctl/", "coordinator/api/json.h"}, ("rocksdb/",)),
    # The engine speaks plain types (coordinator/core/views.h and the log's
    # records, coordinator/log/log_records.h); the messages are made at the
    # rims (api/, server/, the logs' codec). Left inside: the edge link's
    # encoder (edge_wire.cc), which writes tern.v1 bytes (with
    # proto/purge_convert.h; the plain-header rule below keeps it out of
    # the engine's headers).
    ("coordinator/core/", {"common/", "storage/", "coordinator/core/", "coordinator/log/",
                           "proto/purge_convert.h"},
     ("grpc", "boost/beast", "boost/asio", "rocksdb/", "tern/v1/purge.pb.h", "tern/internal/")),
    ("coordinator/", {"common/", "storage/", "coordinator/", "proto/"}, ()),
]
# Only these folders may include RocksDB at all.
ROCKSDB_ALLOWED = ("storage/rocksdb/", "coordinator/log/")
# Only the etcd client and its tests see etcd's API.
ETCD_ALLOWED = ("coordinator/etcd/", "tests/")
# The PurgeLog interface and the engine's headers are plain: no generated
# message in them (the logs encode in their .cc files).
PLAIN_HEADERS = ("coordinator/log/", "coordinator/core/")


def files():
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                          "*.h", "*.cc"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [p for p in out.stdout.split() if not p.startswith("build")]


def main():
    errors = []
    for rel in files():
        rule = next((r for r in RULES if rel.startswith(r[0])), None)
        for n, line in enumerate((ROOT / rel).read_text(errors="replace").splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            inc = m.group(1)
            if inc.startswith("rocksdb/") and not rel.startswith(ROCKSDB_ALLOWED):
                errors.append(f"{rel}:{n}: only {', '.join(ROCKSDB_ALLOWED)} may include {inc}")
            if inc.startswith("etcd/") and not rel.startswith(ETCD_ALLOWED):
                errors.append(f"{rel}:{n}: only {', '.join(ETCD_ALLOWED)} may include {inc}")
            if rel.startswith(PLAIN_HEADERS) and rel.endswith(".h") and \
                    inc.startswith(("tern/", "proto/", "google/protobuf")):
                errors.append(f"{rel}:{n}: a plain header may not include {inc}")
            if rule is None:
                continue
            folder, allowed, forbidden = rule
            if inc.startswith(PROJECT) and not inc.startswith(folder) and \
                    not any(inc.startswith(a) for a in allowed):
                errors.append(f"{rel}:{n}: {folder} may not include {inc}")
            if any(inc.startswith(f) for f in forbidden):
                errors.append(f"{rel}:{n}: {folder} may not include {inc}")
        # edge and coordinator never include each other
        if rel.startswith("edge/") or rel.startswith("coordinator/"):
            other = "coordinator/" if rel.startswith("edge/") else "edge/"
            for n, line in enumerate((ROOT / rel).read_text(errors="replace").splitlines(), 1):
                m = INCLUDE.match(line)
                if m and m.group(1).startswith(other):
                    errors.append(f"{rel}:{n}: {rel.split('/')[0]} may not include {m.group(1)}")
    for e in sorted(set(errors)):
        print(e)
    if errors:
        print(f"layering: {len(set(errors))} violation(s)", file=sys.stderr)
        return 1
    print(f"layering: ok ({len(files())} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
