"""How to reach an environment: the Jupyter URL with its token, Hydrogen's "Kernel Gateways" setting,
the ssh command and a ~/.ssh/config entry for IDEs. The same words for `gpuenv generate` (the spec's
ports) and `gpuenv up` (the ports it got).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, TypedDict

if TYPE_CHECKING:
    from gpuenv.render.recipe import Recipe, ServiceName


class GatewayOptions(TypedDict):
    baseUrl: str
    token: str


class Gateway(TypedDict):
    """One entry of Hydrogen's "Kernel Gateways" setting, as Hydrogen reads it."""

    name: str
    options: GatewayOptions


class Access(TypedDict, total=False):
    """The ways into an environment, each there only when the spec has that service and it has a host
    port; `gpuenv up --json` and `gpuenv generate --json` show it as it is (under "access")."""

    jupyter_url: str                        # with ?token=... when Jupyter's auth is a token
    hydrogen_gateways: list[Gateway]
    ssh_command: str
    ssh_config: str                         # a ~/.ssh/config entry (Host gpuenv-PROJECT), for IDEs


def reach(r: Recipe, ports: dict[ServiceName, int], private_key_file: Optional[str]) -> Access:
    """`ports`: host port per service (jupyter, gateway, ssh). `private_key_file`: the SSH private key's
    path, for `ssh -i` (None: ssh finds the user's key itself)."""
    spec, tokens = r.spec, r.inputs.tokens
    host = "127.0.0.1" if spec.access.bind in ("0.0.0.0", "::") else spec.access.bind
    host = f"[{host}]" if ":" in host else host
    access: Access = {}
    if spec.access.jupyter and "jupyter" in ports:
        j = spec.access.jupyter
        page = "lab" if j.mode == "lab" else "tree"
        query = f"?token={tokens['JUPYTER_TOKEN']}" if j.auth == "token" else ""
        access["jupyter_url"] = f"http://{host}:{ports['jupyter']}/{page}{query}"
    if spec.access.gateway and "gateway" in ports:
        access["hydrogen_gateways"] = [{"name": f"{r.name} (gpuenv)", "options": {
            "baseUrl": f"http://{host}:{ports['gateway']}", "token": tokens["GPUENV_GATEWAY_TOKEN"]}}]
    if spec.access.ssh and "ssh" in ports:
        access["ssh_command"], access["ssh_config"] = _ssh(r.project, host, ports["ssh"], private_key_file)
    return access


def spec_ports(r: Recipe) -> dict[ServiceName, int]:
    """The host port each service asks for in the spec (`gpuenv generate`: nothing moved yet)."""
    return {s.name: s.host_port for s in r.services if s.host_port}


def _ssh(project: str, host: str, port: int, private_key_file: Optional[str]) -> tuple[str, str]:
    """(the ssh command, the ~/.ssh/config entry). The alias is the project's (NAME-USER-FOLDERHASH): two
    folders whose environments share a name get two entries, and the host key it remembers is the one
    kept in the environment's volume."""
    name = project
    identity = f" -i {private_key_file}" if private_key_file else ""
    entry = [f"Host gpuenv-{name}", f"    HostName {host.strip('[]')}", f"    Port {port}", "    User gpuenv"]
    if private_key_file:
        entry.append(f"    IdentityFile {private_key_file}")
    entry += ["    StrictHostKeyChecking accept-new", f"    HostKeyAlias gpuenv-{name}"]
    return f"ssh -p {port}{identity} gpuenv@{host.strip('[]')}", "\n".join(entry) + "\n"
