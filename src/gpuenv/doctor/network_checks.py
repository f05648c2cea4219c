"""`gpuenv doctor --network`: each source the spec's network policy uses (network_probe.py tries them),
as findings with the exact fix (failure-modes.md rows 29, 36, 37, 38, 39). Pure: no I/O here.

A check id per kind of source, stable for --skip: net-pip-index, net-pip-extra-index, net-pytorch-wheels,
net-apt-mirror, net-registry-mirror, net-docker-hub, net-proxy. Severity: a source every build needs that
is blocked, fails TLS or answers an error is an error (exit 1); a slow one, or Docker Hub (only needed when
a base image is not on the engine yet), is a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from gpuenv.doctor.finding import Finding
from gpuenv.doctor.network_probe import SLOW_S, Answer
from gpuenv.kb.mirrors import presets

if TYPE_CHECKING:
    from gpuenv.spec.model import EnvSpec

IDS = ("net-pip-index", "net-pip-extra-index", "net-pytorch-wheels", "net-apt-mirror", "net-registry-mirror",
       "net-docker-hub", "net-proxy")
_SETTING = {"pip-index": "pip_index", "pip-extra-index": "pip_extra_indexes", "pytorch-wheels": "pytorch_wheels",
            "apt-mirror": "apt_mirror", "registry-mirror": "registry_mirror", "proxy": "https_proxy"}
_ROW = {"tls": 36, "slow": 37, "blocked": 38, "http": 37}


@dataclass(frozen=True)
class NetworkReport:
    answers: tuple[Answer, ...]
    findings: tuple[Finding, ...]
    skipped: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "slow_after_s": SLOW_S, "sources": [a.to_dict() for a in self.answers],
                "findings": [f.to_dict() for f in self.findings], "skipped": list(self.skipped)}


def check_id(answer: Answer) -> str:
    return f"net-{answer.source.id}"


def report(answers: list[Answer], spec: Optional[EnvSpec], skip: tuple[str, ...] = ()) -> NetworkReport:
    kept = [a for a in answers if check_id(a) not in skip]
    found = [f for a in kept for f in [finding(a, spec)] if f is not None]
    found.sort(key=lambda f: {"error": 0, "warning": 1, "info": 2}[f.severity])
    return NetworkReport(tuple(kept), tuple(found), skip)


def finding(answer: Answer, spec: Optional[EnvSpec]) -> Optional[Finding]:
    if answer.status == "ok":
        return None
    src = answer.source
    where = f"{src.url}" + (f" through the proxy {answer.proxy}" if answer.proxy else "")
    detected = f"GET {where}: {answer.detail}" if src.id != "proxy" else f"TCP connect to {src.url}: {answer.detail}"
    severity = "warning" if answer.status == "slow" or src.id == "docker-hub" else "error"
    return Finding(check_id(answer), severity, _problem(answer), detected, _fix(answer, spec), _note(answer),
                   29 if src.id == "docker-hub" and answer.status != "tls" else
                   39 if src.id == "proxy" else _ROW[answer.status])


def _problem(a: Answer) -> str:
    setting = a.source.setting
    name = f"{a.source.id} " + (setting if setting.startswith("(") else f"({setting})")
    if a.status == "slow":
        return f"{name} is slow: it took {a.seconds:.1f} s to answer (more than {SLOW_S:g} s)"
    if a.status == "tls":
        extra = ("; this host's own trust store (with its extra CAs) does verify it: TLS is inspected by a proxy "
                 "whose CA builds do not get" if a.ca_fixes else "")
        return f"{name} fails TLS: {a.detail}{extra}"
    if a.status == "http":
        return f"{name} answers with an error ({a.detail})"
    return f"{name} is blocked: {a.detail}"


def _fix(a: Answer, spec: Optional[EnvSpec]) -> tuple[str, ...]:
    key = _SETTING.get(a.source.id, "")
    if a.status == "tls":
        if a.ca_fixes:
            return ('# gpuenv.toml: [network] ca_certificates = "auto"   (the host\'s CA bundle reaches builds as a '
                    'secret and running containers read-only; never an image layer)',)
        return ("# get the CA certificate of the TLS-inspecting proxy (your IT department), then in gpuenv.toml:",
                '# [network] ca_certificates = ["/usr/local/share/ca-certificates/proxy.crt"]',
                "# or, for an index served over plain http: the http:// URL and [network] pip_trusted_hosts = [HOST]")
    if a.source.id == "docker-hub":
        return ('# gpuenv.toml: [network] registry_mirror = "https://<a registry mirror you can reach>"',
                "# or bring the base image along: docker save IMAGE | zstd > base.tar.zst; here: docker load",
                "# gpuenv builds a Debian base from the apt mirror itself when the plan needs no system CUDA")
    if a.source.id == "proxy":
        return (f"# check the proxy address ({a.source.setting}): host and port as your network documents them",
                "# or remove [network] https_proxy / http_proxy if this network needs none")
    if a.status == "http":
        return (f"# check network.{key}: {a.source.url} answered {a.detail}",
                "# a pip index ends in /simple (PEP 503); an apt mirror serves /debian and /ubuntu")
    return _elsewhere(a, key, spec)


def _elsewhere(a: Answer, key: str, spec: Optional[EnvSpec]) -> tuple[str, ...]:
    """Blocked or slow: another mirror, a preset, or the proxy."""
    preset = spec.network.preset if spec is not None else None
    value = '"<a mirror closer to this server>"'
    value = f"[{value}]" if key == "pip_extra_indexes" else value
    fixes = [f"# gpuenv.toml: [network] {key} = {value}"]
    if not preset:
        fixes.append('# in mainland China: [network] preset = "cn" (TUNA for apt and PyPI, NJU for PyTorch wheels; '
                     "`gpuenv spec check` shows what it fills)")
    elif "from preset" in a.source.setting:
        others = ", ".join(f'"{p}"' for p in presets() if p != preset)
        fixes.append(f'# the preset "{preset}" filled it; an explicit {key} wins, or try another preset: {others}')
    if a.status == "blocked" and key != "registry_mirror":
        fixes.append('# behind a firewall with a proxy: [network] https_proxy = "http://proxy.example.com:3128"')
    return tuple(fixes)


def _note(a: Answer) -> str:
    if a.status == "tls" and a.ca_fixes:
        return "network.ca_certificates is \"none\", so builds trust only the image's public roots."
    if a.source.id == "docker-hub":
        return "images already on the engine (and gpuenv's own Debian base) still build."
    return ""
