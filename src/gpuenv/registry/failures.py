"""A failed `docker push` or `docker pull`, said as what is wrong with the registry and what to do.

The docker CLI's own words stay at the end of the message (its last line), for what is not recognised.
"""

from __future__ import annotations

from typing import Optional

from gpuenv.errors import EngineError, GpuenvError
from gpuenv.registry.ref import Ref


def failure(action: str, ref: Ref, output: str, username: Optional[str]) -> GpuenvError:
    text = " ".join(output.split())
    said = _last_line(output)
    low = text.lower()
    host = ref.host
    if "server gave http response to https client" in low or "does not look like a tls handshake" in low:
        return EngineError(f"the registry {host} answers plain HTTP, and the engine speaks only TLS to it ({said})",
                           f"serve the registry over TLS, or add \"insecure-registries\": [\"{host}\"] to "
                           "/etc/docker/daemon.json and restart dockerd (only on a network you trust; 127.0.0.0/8 "
                           "is allowed without it)")
    if "x509" in low or "certificate" in low:
        return EngineError(f"the engine does not trust the TLS certificate of {host} ({said})",
                           f"put the CA that signed it in /etc/docker/certs.d/{host}/ca.crt on this host")
    if "no basic auth credentials" in low or "unauthorized" in low or "authentication required" in low:
        return _refused(action, ref, said, username)
    if "denied" in low:
        who = f"the user {username}" if username else "your login"
        return EngineError(f"{host} denied the {action} of {ref.name} to {who} ({said})",
                           "use a login that may write to that repository, or another repository")
    if "manifest unknown" in low or "not found" in low or "name unknown" in low:
        return EngineError(f"{ref} is not in the registry: no such repository, tag or digest ({said})",
                           f"check the name and the tag; http(s)://{host}/v2/{ref.repo}/tags/list lists the tags")
    if any(s in low for s in ("no such host", "connection refused", "i/o timeout", "dial tcp", "unreachable",
                              "timeout exceeded", "connection reset", "eof")):
        return EngineError(f"cannot reach the registry {host} ({said})",
                           "check the host and port; the engine (dockerd) connects, through its own proxy "
                           "settings, not gpuenv's")
    return EngineError(f"`docker {action}` of {ref} failed: {said}")


def _refused(action: str, ref: Ref, said: str, username: Optional[str]) -> GpuenvError:
    if username:
        return EngineError(f"the registry {ref.host} refused the password of the user {username} ({said})",
                           "check the user name and the password; nothing was stored")
    return EngineError(f"the registry {ref.host} needs a login for this {action} ({said})",
                       f"give one: --username NAME --password-stdin (or GPUENV_REGISTRY_PASSWORD), "
                       f"or `docker login {ref.host}` once")


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return (lines[-1] if lines else "no output")[-400:]
