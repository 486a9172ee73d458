#!/usr/bin/env python3
"""Demo origin for Tern: versioned content that makes caching and purges visible.

Every page is rendered from a version number that you can bump, with an ETag
and Last-Modified derived from it, surrogate keys (Surrogate-Key and
Cache-Tag) and a Cache-Control you can change:

  GET  /                         index with links
  GET  /products/<n>             a product page, tags "product-<n>" and "products"
  GET  /static/app.js            a long-lived asset, tag "static"
  POST /admin/bump?tag=<tag>     new version for everything tagged <tag> ("all" bumps all)
  POST /admin/cache-control?value=max-age%3D5   set Cache-Control for pages
  GET  /admin/stats              requests seen, by path and by kind (200 / 304)

Conditional requests with a matching ETag get 304, so a soft purge of
unchanged content costs one 304. Listens on 127.0.0.1 unless --bind says otherwise.
"""
import argparse
import hashlib
import json
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

lock = threading.Lock()
versions = {}          # tag -> version
born = {}              # tag -> unix time of the version
cache_control = "max-age=60"
stats = {"paths": {}, "200": 0, "304": 0}


def version_of(tags):
    # Starts at 1; every bump of any of the page's tags adds one.
    return 1 + sum(versions.get(t, 1) - 1 for t in tags)


def modified_of(tags):
    return max(born.get(t, 1700000000) for t in tags)


def page(path):
    if path == "/":
        links = "".join(f'<li><a href="/products/{n}">product {n}</a></li>' for n in range(1, 6))
        return ["index"], "text/html", f"<h1>Tern demo origin</h1><ul>{links}</ul>", cache_control
    if path.startswith("/products/") and path[len("/products/"):].isdigit():
        n = path[len("/products/"):]
        tags = [f"product-{n}", "products"]
        body = f"<h1>Product {n}</h1><p>version {version_of(tags)}</p>"
        return tags, "text/html", body, cache_control
    if path == "/static/app.js":
        tags = ["static"]
        return tags, "application/javascript", f"// app.js version {version_of(tags)}\n", "max-age=86400"
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, headers):
        data = body.encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if status != 304:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if status != 304 and self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urlparse(self.path)
        with lock:
            stats["paths"][url.path] = stats["paths"].get(url.path, 0) + 1
        if url.path == "/admin/stats":
            with lock:
                return self.send(200, json.dumps(stats, indent=2) + "\n", [("Content-Type", "application/json"),
                                                                           ("Cache-Control", "no-store")])
        with lock:
            found = page(url.path)
        if found is None:
            return self.send(404, "not found\n", [("Cache-Control", "max-age=10")])
        tags, ctype, body, cc = found
        etag = '"' + hashlib.sha1(body.encode()).hexdigest()[:16] + '"'
        headers = [("Content-Type", ctype), ("Cache-Control", cc), ("ETag", etag),
                   ("Last-Modified", formatdate(modified_of(tags), usegmt=True)),
                   ("Surrogate-Key", " ".join(tags)), ("Cache-Tag", ",".join(tags))]
        # (Date comes from send_response: one per response.)
        inm = self.headers.get("If-None-Match", "")
        status = 304 if etag in inm else 200
        with lock:
            stats[str(status)] += 1
        self.send(status, body, headers)

    def do_POST(self):
        global cache_control
        url = urlparse(self.path)
        q = parse_qs(url.query)
        import time
        with lock:
            if url.path == "/admin/bump":
                tag = q.get("tag", ["all"])[0]
                keys = list(versions.keys() | {"products", "static", "index"} | {f"product-{n}" for n in range(1, 6)}) \
                    if tag == "all" else [tag]
                for t in keys:
                    versions[t] = versions.get(t, 1) + 1
                    born[t] = int(time.time())
                msg = f"bumped {', '.join(sorted(keys))}\n"
            elif url.path == "/admin/cache-control":
                cache_control = q.get("value", [cache_control])[0]
                msg = f"Cache-Control: {cache_control}\n"
            else:
                msg = None
        if msg is None:
            return self.send(404, "not found\n", [])
        self.send(200, msg, [("Cache-Control", "no-store")])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--bind", default="127.0.0.1", help="address to listen on (0.0.0.0 in containers)")
    args = ap.parse_args()
    server = ThreadingHTTPServer((args.bind, args.port), Handler)
    print(f"demo origin on http://127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
