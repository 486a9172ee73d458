#!/usr/bin/env python3
"""A real origin server process for edge tests (loopback only).

Paths:
  /big?size=N[&cc=...]  N bytes, byte i = i % 256, Content-Length, cacheable
                        (Cache-Control: max-age=60 unless cc= is given);
                        written in 64 KiB pieces, counted in /admin/sent
  /drop...              answered on the first request of a connection; on a
                        later one the connection is closed without a response
                        (an origin that went away as the request arrived)
  /hints?n=N            102 Processing, then N 103 Early Hints (Link: </sI.css>),
                        then 200
  /enc                  Vary: Accept-Encoding, cacheable; Content-Encoding gzip
                        when the request accepts gzip, else br when it accepts
                        br, else none (an origin that prefers gzip)
  /close-soon...        answered with keep-alive, then the origin closes the
                        connection 200 ms later (a short keep-alive timeout)
  anything else         200 "ok METHOD PATH", Cache-Control: no-store, or
                        ?cc=... as Cache-Control, ?age=N as Age, ?cdn=... as
                        CDN-Cache-Control, ?delay=MS answered MS later (at most 5 s)
  /admin/count?key=METHOD%20PATH  how many such requests arrived (incl. dropped)
  /admin/connections    connections accepted
  /admin/sent           body bytes of /big written to sockets
  /admin/fail?mode=M    from now on every other request fails: M is a status
                        (e.g. 503, answered with a body) or "reset" (the
                        connection is closed without a response); mode=off
                        ends it

Prints "port N" on stdout once listening (port 0: chosen by the kernel).
"""
import argparse
import collections
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
COUNTS = collections.Counter()
STATE = {"connections": 0, "sent": 0, "fail": "off"}
BLOCK = bytes(range(256)) * 256  # 64 KiB; byte i of a body is i % 256


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.on_conn = 0
        with LOCK:
            STATE["connections"] += 1

    def log_message(self, *args):
        pass

    def _send(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        self.on_conn += 1
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if url.path.startswith("/admin/"):
            with LOCK:
                if url.path == "/admin/count":
                    value = COUNTS[q.get("key", [""])[0]]
                elif url.path == "/admin/connections":
                    value = STATE["connections"]
                elif url.path == "/admin/fail":
                    value = STATE["fail"] = q.get("mode", ["off"])[0]
                else:
                    value = STATE["sent"]
            return self._send(200, str(value).encode(), [("Cache-Control", "no-store")])
        with LOCK:
            COUNTS[self.command + " " + url.path] += 1
            fail = STATE["fail"]
        if fail == "reset":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fail != "off":
            return self._send(int(fail), b"origin failing", [("Cache-Control", "no-store")])
        if url.path.startswith("/drop") and self.on_conn > 1:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if url.path == "/enc":
            ae = self.headers.get("Accept-Encoding", "")
            coding = "gzip" if "gzip" in ae else "br" if "br" in ae else ""
            headers = [("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding")]
            if coding:
                headers.append(("Content-Encoding", coding))
            return self._send(200, ("body in %s" % (coding or "identity")).encode(), headers)
        if url.path == "/hints":
            out = b"HTTP/1.1 102 Processing\r\n\r\n"
            for i in range(int(q.get("n", ["1"])[0])):
                out += b"HTTP/1.1 103 Early Hints\r\nLink: </s%d.css>; rel=preload\r\n\r\n" % i
            self.wfile.write(out)
            self.wfile.flush()
            return self._send(200, b"final", [("Cache-Control", "no-store")])
        if url.path == "/big":
            size = int(q.get("size", ["0"])[0])
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.send_header("Cache-Control", q.get("cc", ["max-age=60"])[0])
            self.end_headers()
            if self.command == "HEAD":
                return
            left = size
            while left > 0:
                piece = BLOCK if left >= len(BLOCK) else BLOCK[:left]
                self.wfile.write(piece)
                left -= len(piece)
                with LOCK:
                    STATE["sent"] += len(piece)
            return
        body = ("ok %s %s" % (self.command, url.path)).encode()
        headers = [("Cache-Control", q.get("cc", ["no-store"])[0])]
        if "age" in q:
            headers.append(("Age", q["age"][0]))
        if "cdn" in q:
            headers.append(("CDN-Cache-Control", q["cdn"][0]))
        if "delay" in q:
            time.sleep(min(int(q["delay"][0]), 5000) / 1000.0)
        self._send(200, body, headers)
        if url.path.startswith("/close-soon"):
            conn = self.connection
            threading.Timer(0.2, lambda: _shutdown(conn)).start()

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


def _shutdown(conn):
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("port", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
