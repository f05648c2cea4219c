"""Docker's health check for a gpuenv container: `healthcheck.py http PORT` or `healthcheck.py ssh PORT`.

http: the server answers its API: GET /api, with the token the container was started with (the kernel
gateway's KG_AUTH_TOKEN, Jupyter's JUPYTER_TOKEN), read from the environment, never from the command
line; a refused call would be a warning in the server's log every 10 s. Jupyter answers /api without a
token too (password mode). ssh: the port greets with an SSH banner. Runs on Python 2.7 and 3 alike;
exit 0 when healthy.
"""
import os
import socket
import sys

TOKENS = ("KG_AUTH_TOKEN", "JUPYTER_TOKEN")


def api_request(port):
    try:
        from urllib.request import Request
    except ImportError:  # Python 2
        from urllib2 import Request
    request = Request("http://127.0.0.1:%d/api" % port)
    token = next((os.environ[name] for name in TOKENS if os.environ.get(name)), "")
    if token:
        request.add_header("Authorization", "token " + token)
    return request


def http_answers(port):
    try:
        from urllib.request import build_opener, ProxyHandler
    except ImportError:  # Python 2
        from urllib2 import build_opener, ProxyHandler
    opener = build_opener(ProxyHandler({}))      # never through a proxy: it is this container
    reply = opener.open(api_request(port), timeout=4)
    try:
        reply.read()
        return 200 <= reply.getcode() < 400
    finally:
        reply.close()


def ssh_answers(port):
    conn = socket.create_connection(("127.0.0.1", port), 4)
    try:
        return conn.recv(64).startswith(b"SSH-")
    finally:
        conn.close()


def main(argv):
    kind, port = argv[1], int(argv[2])
    try:
        ok = http_answers(port) if kind == "http" else ssh_answers(port)
    except Exception as error:  # any failure to answer (an HTTP error status included) is "unhealthy", said once
        sys.stderr.write("%s on port %d does not answer: %s\n" % (kind, port, error))
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
