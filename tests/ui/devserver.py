#!/usr/bin/env python3
"""Dev proxy for the Warren web UI.

Serves src/http/ui/{index.html,app.js,app.css} at /, /ui/app.js, /ui/app.css and
forwards everything under /api/ (method, headers incl. Authorization, body) to a
management API, by default the reference RabbitMQ on http://127.0.0.1:15673.

    python3 tests/ui/devserver.py [--port 8080] [--target http://127.0.0.1:15673]
"""
import argparse
import http.client
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
UI_DIR = os.path.normpath(os.path.join(HERE, '..', '..', 'src', 'http', 'ui'))
STATIC = {
    '/': ('index.html', 'text/html; charset=utf-8'),
    '/index.html': ('index.html', 'text/html; charset=utf-8'),
    '/ui/app.js': ('app.js', 'text/javascript; charset=utf-8'),
    '/ui/app.css': ('app.css', 'text/css; charset=utf-8'),
}
HOP_BY_HOP = {'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailers',
              'transfer-encoding', 'upgrade', 'host', 'content-length'}


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    target = None  # urllib.parse.SplitResult

    def log_message(self, fmt, *args):
        if os.environ.get('DEVSERVER_QUIET') != '1':
            sys.stderr.write('devserver: ' + (fmt % args) + '\n')

    def handle_any(self):
        path = self.path.split('?', 1)[0]
        if path.startswith('/api/') or path == '/api':
            return self.proxy()
        if self.command in ('GET', 'HEAD') and path in STATIC:
            name, ctype = STATIC[path]
            with open(os.path.join(UI_DIR, name), 'rb') as f:
                body = f.read()
            return self.reply(200, [('Content-Type', ctype), ('Cache-Control', 'no-store')], body)
        return self.reply(404, [('Content-Type', 'text/plain')], b'not found\n')

    def proxy(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        conn = http.client.HTTPConnection(self.target.hostname, self.target.port or 80, timeout=60)
        try:
            conn.request(self.command, self.target.path.rstrip('/') + self.path, body=body, headers=headers)
            res = conn.getresponse()
            data = res.read()
            out = [(k, v) for k, v in res.getheaders() if k.lower() not in HOP_BY_HOP]
            self.reply(res.status, out, data)
        except OSError as e:
            self.reply(502, [('Content-Type', 'application/json')],
                       ('{"error":"bad_gateway","reason":"%s"}' % str(e).replace('"', "'")).encode())
        finally:
            conn.close()

    def reply(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = handle_any


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--port', type=int, default=8080)
    ap.add_argument('--bind', default='127.0.0.1')
    ap.add_argument('--target', default='http://127.0.0.1:15673')
    a = ap.parse_args()
    Handler.target = urllib.parse.urlsplit(a.target)
    srv = ThreadingHTTPServer((a.bind, a.port), Handler)
    print('devserver: http://%s:%d/ -> %s' % (a.bind, srv.server_address[1], a.target), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
