"""Docker's health check for a gpuenv container: `healthcheck.py http PORT` or `healthcheck.py ssh PORT`.

http: the server answers HTTP at all (any status: the kernel gateway asks for its token even on /api);
ssh: the port greets with an SSH banner. Runs on Python 2.7 and 3 alike; exit 0 when healthy.
"""
import socket
import sys


def http_answers(port):
    try:
        from urllib.request import urlopen
        from urllib.error import HTTPError
    except ImportError:  # Python 2
        from urllib2 import urlopen, HTTPError
    try:
        urlopen("http://127.0.0.1:%d/api" % port, timeout=4).read()
    except HTTPError:
        pass
    return True


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
    except Exception as error:  # any failure to answer is "unhealthy", said once
        sys.stderr.write("%s on port %d does not answer: %s\n" % (kind, port, error))
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
