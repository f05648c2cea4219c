"""Checks of what containers get by default and of the network they meet (failure-modes.md rows 29, 32,
36, 39, 43)."""

from __future__ import annotations

import re
from typing import Optional

from gpuenv.doctor.finding import Context, Finding, check

SHM_ENOUGH = 1 << 30


@check("shm-size", "containers get enough /dev/shm")
def shm_size(ctx: Context) -> Optional[Finding]:
    engine = ctx.report.engine
    if not engine.ok:
        return None
    configured = ctx.report.system.daemon_json.get("default-shm-size")
    size = _bytes(str(configured)) if configured else 64 << 20
    if size >= SHM_ENOUGH:
        return None
    said = f"default-shm-size is {configured}" if configured else "no default-shm-size in /etc/docker/daemon.json"
    return Finding("shm-size", "info",
                   f"containers started by hand or by an IDE get {size >> 20} MB of /dev/shm: PyTorch DataLoader "
                   "workers die with 'Bus error' and NCCL with 'No space left on device'",
                   said + " (the engine's default is 64 MB)",
                   ('# /etc/docker/daemon.json: "default-shm-size": "8G"', ctx.sudo("systemctl restart docker")),
                   "or per container: --shm-size=8g, or --ipc=host.", 32)


@check("port-taken", "the spec's ports are free")
def port_taken(ctx: Context) -> Optional[Finding]:
    if not ctx.taken_ports:
        return None
    listed = ", ".join(f"{port} ({who})" for port, who in sorted(ctx.taken_ports.items()))
    first = min(ctx.taken_ports)
    return Finding("port-taken", "warning",
                   f"ports that {ctx.spec_path or 'the spec'} publishes are already taken: {listed}; a browser "
                   "would reach the other server and its token would be 'Invalid credentials'",
                   "binding each port on the spec's access.bind address failed",
                   (f"ss -ltnp 'sport = :{first}'   # who holds it",
                    "# or choose other ports in gpuenv.toml under [access]"), "", 43)


@check("docker-hub", "base images can be pulled")
def docker_hub(ctx: Context) -> Optional[Finding]:
    network = ctx.report.network
    if network is None or not ctx.report.engine.ok or any(r.answers for r in network.registries):
        return None
    tried = "; ".join(f"{r.url}: {r.detail}" for r in network.registries)
    return Finding("docker-hub", "warning",
                   "neither Docker Hub nor a registry mirror answers: `FROM nvidia/cuda...` and `FROM python...` "
                   "cannot be pulled",
                   f"GET /v2/ of each: {tried}",
                   ('# gpuenv.toml: [network] registry_mirror = "https://<a mirror you can reach>"',
                    '# or for every pull: /etc/docker/daemon.json "registry-mirrors": ["https://<mirror>"], then '
                    + ctx.sudo("systemctl restart docker"),
                    "# or bring images along: docker save IMAGE | gzip > image.tgz; here: docker load -i image.tgz"),
                   "images already on the engine still work, and a base can be made from an apt mirror "
                   "(debootstrap ... | docker import).", 29)


@check("engine-proxy", "the engine uses this host's proxy")
def engine_proxy(ctx: Context) -> Optional[Finding]:
    report = ctx.report
    if report.network is None or not report.engine.ok or report.engine.remote:
        return None
    proxies = report.network.proxies
    if not (proxies.get("https_proxy") or proxies.get("http_proxy")) or report.engine.https_proxy \
            or report.engine.http_proxy:
        return None
    values = " ".join(f'"{k.upper()}={v}"' for k, v in sorted(proxies.items()))
    return Finding("engine-proxy", "warning",
                   "this shell uses a proxy but the Docker engine does not: pulls time out ('Client.Timeout "
                   "exceeded while awaiting headers')",
                   "HTTP(S)_PROXY is set here; `docker info` shows no proxy",
                   (ctx.sudo("mkdir -p /etc/systemd/system/docker.service.d"),
                    f"printf '[Service]\\nEnvironment={values}\\n' | "
                    + ctx.sudo("tee /etc/systemd/system/docker.service.d/http-proxy.conf"),
                    ctx.sudo("systemctl daemon-reload"), ctx.sudo("systemctl restart docker")), "", 39)


@check("tls-proxy-ca", "builds trust this host's extra CAs")
def tls_proxy_ca(ctx: Context) -> Optional[Finding]:
    network = ctx.report.network
    if network is None or not network.extra_cas:
        return None
    setting = ctx.spec.network.ca_certificates if ctx.spec is not None else "auto"
    if network.intercepted_by is None and setting != "none":
        return None
    ca = network.intercepted_by or network.extra_cas[0]
    problem = ("TLS is intercepted: " + network.intercept_probe if network.intercepted_by
               else f"this host trusts CAs that public roots do not ({', '.join(network.extra_cas)})")
    fix = ('# gpuenv.toml: [network] ca_certificates = "auto"   (gpuenv passes them to builds as secrets)'
           if setting == "none" else "# gpuenv's builds get them as BuildKit secrets (ca_certificates = \"auto\", "
                                     "the default)",
           f"DOCKER_BUILDKIT=1 docker build --secret id=ca,src={ca} ...   # by hand: then in the Dockerfile "
           "RUN --mount=type=secret,id=ca PIP_CERT=/run/secrets/ca pip install ...")
    return Finding("tls-proxy-ca", "warning" if setting == "none" else "info",
                   problem + ": containers do not trust that CA, so pip inside a build fails with "
                   "CERTIFICATE_VERIFY_FAILED",
                   f"{len(network.extra_cas)} CA file(s) added to this host's trust store; " + network.intercept_probe,
                   fix, "the CA reaches builds as a secret and never lands in an image layer.", 36)


def _bytes(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", text.lower())
    if not match:
        return 0
    return int(float(match.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[match.group(2)])
