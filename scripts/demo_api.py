"""A stand-in API for the demo: answers GET /userinfo with JSON when the bearer token matches, 401 otherwise.

Usage: python3 demo_api.py TOKEN  -> prints "listening PORT" once ready, on 127.0.0.1.
"""
import http.server
import json
import sys

TOKEN = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.headers.get("Authorization") == f"Bearer {TOKEN}"
        body = {"sub": "demo-user", "email": "demo@example.com", "path": self.path} if ok else {"error": "invalid_token"}
        data = json.dumps(body).encode()
        self.send_response(200 if ok else 401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        sys.stderr.write("api: " + (fmt % args) + "\n")


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
