"""python -m oeld_trainer serve [--host HOST] [--port PORT]: the trainer at a URL (OELD_TORCH_URL).

For a GPU host apart from the daemon's. It runs each job exactly as the daemon would run it locally
(`python -m oeld_trainer JOB.json`, a child process of this server, same interpreter) and streams the
child's reports back as the response body, one JSON object a line:

  POST /jobs    body: the job (src/trainer/torch-job.ts). 200 with the reports as they happen; a job
                that fails ends with an {"event": "error"} line. The connection is the job's lifeline:
                when the daemon goes away or gives up (its stall timeout, a stop), the child is killed.
  GET  /probe   the interpreter, torch and the CUDA devices, as `--probe` prints them.

The job names files by path (the round-start folder, where the new weights and checkpoints go), so
this host must see the daemon's OELD_DATA_DIR at the same path (a shared volume). With
OELD_TRAINER_TOKEN set, every request needs `Authorization: Bearer <token>`. The first line on
stdout is `oeld_trainer serving on http://HOST:PORT`.
"""
import json
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STDERR_TAIL = 4000


def child_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # one line per request on stderr
        sys.stderr.write("oeld_trainer serve: " + (fmt % args) + "\n")

    def authorized(self):
        token = os.environ.get("OELD_TRAINER_TOKEN")
        if token and self.headers.get("Authorization") != f"Bearer {token}":
            self.reply(401, {"error": "missing or wrong bearer token (OELD_TRAINER_TOKEN)"})
            return False
        return True

    def reply(self, status, obj):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if not self.authorized():
            return
        if self.path != "/probe":
            return self.reply(404, {"error": f"no such path: {self.path} (GET /probe, POST /jobs)"})
        r = subprocess.run([sys.executable, "-m", "oeld_trainer", "--probe"], capture_output=True, text=True, env=child_env(), timeout=120)
        if r.returncode != 0:
            return self.reply(500, {"error": f"probe failed: {r.stderr.strip()[-1000:]}"})
        self.reply(200, json.loads(r.stdout.strip().splitlines()[-1]))

    def do_POST(self):
        if not self.authorized():
            return
        if self.path != "/jobs":
            return self.reply(404, {"error": f"no such path: {self.path} (GET /probe, POST /jobs)"})
        try:
            job = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if not isinstance(job, dict):
                raise ValueError("the job is not a JSON object")
        except (ValueError, json.JSONDecodeError) as e:
            return self.reply(400, {"error": f"body: {e}"})
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="oeld-job-", delete=False) as f:
            json.dump(job, f)
            job_file = f.name
        try:
            self.run_job(job_file)
        finally:
            os.unlink(job_file)

    def run_job(self, job_file):
        child = subprocess.Popen([sys.executable, "-m", "oeld_trainer", job_file], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=child_env())
        stderr = []
        threading.Thread(target=lambda: stderr.append(child.stderr.read().decode(errors="replace")), daemon=True).start()
        gone = threading.Event()
        threading.Thread(target=self.watch_client, args=(child, gone), daemon=True).start()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        errored = False
        try:
            for line in child.stdout:
                errored = errored or b'"event": "error"' in line
                self.chunk(line)
            code = child.wait()
            if code != 0 and not errored:
                why = f"killed (signal {-code})" if code < 0 else f"exited with code {code}"
                tail = " | ".join((stderr[0] if stderr else "").strip().splitlines()[-6:])[-1500:]
                self.chunk((json.dumps({"event": "error", "message": f"the trainer process on {socket.gethostname()} {why}" + (f": {tail}" if tail else "")}) + "\n").encode())
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            gone.set()
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
            gone.set()

    def chunk(self, data):
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def watch_client(self, child, gone):
        """Kills the job when its client disconnects, even while the job writes nothing (a hang)."""
        conn = self.connection
        while not gone.is_set() and child.poll() is None:
            readable, _, _ = select.select([conn], [], [], 0.5)
            if readable:
                try:
                    if conn.recv(1, socket.MSG_PEEK) == b"":
                        break
                except OSError:
                    break
        else:
            return
        sys.stderr.write("oeld_trainer serve: the client went away; stopping its job\n")
        if child.poll() is None:
            child.kill()


def serve(argv):
    host, port = "127.0.0.1", 8765
    args = list(argv)
    while args:
        flag = args.pop(0)
        if flag == "--host" and args:
            host = args.pop(0)
        elif flag == "--port" and args:
            port = int(args.pop(0))
        else:
            sys.stderr.write("usage: python -m oeld_trainer serve [--host HOST] [--port PORT]\n")
            return 2
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    print(f"oeld_trainer serving on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
