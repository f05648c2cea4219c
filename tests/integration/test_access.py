"""The ways into an environment, used by real clients, the way its user would: JupyterLab in a real
browser (Chromium driven by Playwright), the kernel gateway through Atom Hydrogen's own client library
(@jupyterlab/services 0.52 under node, tests/integration/clients/hydrogen.js) and through the protocol
itself (REST and a websocket carrying Jupyter messages), and SSH with the key gpuenv made; the logs
stay free of noise; then Ctrl-C in the middle of a build. Every environment is JAX on the CPU, built on this
machine's real engine, run as UID 4321 (sudo's SUDO_UID) with its own HOME and XDG folders.
"""

from __future__ import annotations

import json
import os
import queue
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
UID = 4321
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--no-proxy-server"]   # the host's http(s)_proxy must not carry 127.0.0.1
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
CODE = "import jax.numpy as jnp; print(int(jnp.arange(10).sum()) * 2)"


def gpuenv(*args: str, cwd: Path, env: dict, timeout: int = 1800) -> subprocess.CompletedProcess:
    full = {**os.environ, "SUDO_UID": str(UID), "SUDO_GID": str(UID), **env}
    return subprocess.run([sys.executable, "-m", "gpuenv", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def isolated_home(tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("home")
    return {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "XDG_STATE_HOME": str(home / ".state"),
            "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local" / "share")}


def http(method: str, url: str, token: str | None = None, body: dict | None = None) -> tuple[int, object]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"token {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with OPENER.open(request, timeout=60) as reply:
            text = reply.read().decode()
            return reply.status, json.loads(text) if text else None
    except urllib.error.HTTPError as exc:
        return exc.code, None


def remove_images(engine, repository: str) -> None:
    for ref in engine.docker("images", "--format", "{{.Repository}}:{{.Tag}}", repository).stdout.decode().split():
        engine.docker("image", "rm", "--force", ref, check=False)


def containers(engine, *filters: str) -> list[str]:
    args = ["ps", "-a", "--no-trunc", "--format", "{{.ID}}"]
    for f in filters:
        args += ["--filter", f]
    return engine.docker(*args).stdout.decode().split()


# --- one environment with every way in: JupyterLab, the kernel gateway, sshd -------------------------

@pytest.fixture(scope="module")
def access_env(module_engine, tmp_path_factory):
    name = module_engine.unique("access")
    folder = tmp_path_factory.mktemp("access-project")
    (folder / "gpuenv.toml").write_text(f"""\
name = "{name}"
python = "3.11"
frameworks = ["jax"]

[gpu]
devices = "none"

[access.jupyter]
mode = "lab"
port = {free_port()}

[access.gateway]
port = {free_port()}

[access.ssh]
port = {free_port()}
authorized_key = "auto"
""")
    os.chown(folder, UID, UID)
    env = isolated_home(tmp_path_factory)
    run = gpuenv("up", "--json", cwd=folder, env=env)
    data = json.loads(run.stdout) if run.stdout.strip().startswith("{") else {}
    yield {"folder": folder, "env": env, "run": run, "data": data}
    gpuenv("down", "--volumes", cwd=folder, env=env, timeout=300)
    # whatever a failed up or down left: containers and the host-key volume are named after the project,
    # which starts with the environment's name; images are gpuenv-NAME:TAG
    for cid in containers(module_engine, f"name={name}"):
        module_engine.docker("rm", "-f", "-v", cid, check=False)
    for volume in module_engine.docker("volume", "ls", "-q", "--filter", f"name={name}").stdout.decode().split():
        module_engine.docker("volume", "rm", volume, check=False)
    remove_images(module_engine, f"gpuenv-{name}")


@pytest.fixture
def access(access_env):
    run = access_env["run"]
    assert run.returncode == 0, run.stderr[-4000:]
    return access_env


# --- 1. JupyterLab in a real browser ------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no {CHROMIUM}: apt-get install chromium (scripts/test installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_a_browser_runs_jax_in_a_new_notebook_through_the_printed_url(access, chromium):
    from playwright.sync_api import expect

    url = access["data"]["access"]["jupyter_url"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/lab\?token=[0-9a-f]{32,}", url), url
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(url)
        # The launcher's Notebook card for the Python 3 kernel: a new notebook with a new kernel.
        page.locator(".jp-LauncherCard[data-category='Notebook']").first.click()
        panel = page.locator(".jp-NotebookPanel").first
        expect(panel.locator(".jp-Notebook")).to_be_visible(timeout=60_000)
        # The toolbar's indicator says "idle" before any kernel exists; the status bar names the kernel
        # and says Idle only once its websocket is connected and it answered.
        expect(page.locator("#jp-main-statusbar").get_by_text(re.compile(r"Python 3.*\|\s*Idle"))) \
            .to_be_visible(timeout=90_000)
        editor = panel.locator(".jp-Cell .jp-Cell-inputArea .cm-content").first
        editor.click()
        page.keyboard.type(CODE)
        expect(editor).to_have_text(CODE)
        page.keyboard.press("Shift+Enter")
        first_cell = panel.locator(".jp-Cell").first
        expect(first_cell.locator(".jp-OutputArea-output")).to_have_text("90", timeout=120_000)
        expect(first_cell.locator(".jp-InputArea-prompt")).to_have_text("[1]:")

        # Saved, it lands in the workspace on the host, as the host user's file, output included.
        # (JupyterLab 4 offers to rename an untitled notebook on its first save: keep the name.)
        page.keyboard.press("Control+s")
        dialog = page.locator(".jp-Dialog")
        expect(dialog).to_contain_text("Rename file")
        with page.expect_response(lambda r: "/api/contents/" in r.url and r.request.method == "PUT"
                                  and r.ok) as saved:
            dialog.get_by_role("button", name="Rename and Save").click()
        name = urllib.request.unquote(saved.value.url.split("/api/contents/", 1)[1].split("?")[0])
        notebook = access["folder"] / name
        assert notebook.suffix == ".ipynb" and notebook.stat().st_uid == UID, (name, notebook.stat())
        cells = json.loads(notebook.read_text())["cells"]
        assert "".join(cells[0]["source"]) == CODE
        assert any("".join(o.get("text", "")).strip() == "90" for o in cells[0]["outputs"]), cells[0]
    finally:
        context.close()


def test_the_url_without_its_token_gets_no_notebook(access, chromium):
    from playwright.sync_api import expect

    url = access["data"]["access"]["jupyter_url"]
    base, token = url.split("/lab?token=")
    for wrong in (f"{base}/lab", f"{base}/lab?token={'0' * len(token)}"):
        context = chromium.new_context()    # no cookie from the run with the token
        try:
            page = context.new_page()
            reply = page.goto(wrong)
            assert reply is not None and reply.status in (200, 403), (wrong, reply and reply.status)
            # Jupyter's login page (asks for the token or a password), never the lab
            expect(page).to_have_url(re.compile(r"/login\b"))
            expect(page.locator("#password_input")).to_be_visible()
            assert page.locator(".jp-LabShell, .jp-Notebook, .jp-LauncherCard").count() == 0
            kernels = page.request.get(f"{base}/api/kernels")
            assert kernels.status == 403, kernels.status
            if "token=" in wrong:
                continue
            # The login page itself lets in whoever has the token (the printed URL's), and nobody else.
            page.locator("#password_input").fill("0" * len(token))
            page.locator("#password_input").press("Enter")
            expect(page).to_have_url(re.compile(r"/login\b"))
            expect(page.locator("#password_input")).to_be_visible()
            page.locator("#password_input").fill(token)
            page.locator("#password_input").press("Enter")
            expect(page.locator(".jp-LabShell")).to_be_visible(timeout=60_000)
            assert page.request.get(f"{base}/api/kernels").status == 200
        finally:
            context.close()


# --- 2. the kernel gateway, spoken to as Atom Hydrogen does ------------------------------------------

def execute(ws, code: str) -> dict:
    """One execute_request on the shell channel; everything the kernel answered to it."""
    msg_id = uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": uuid.uuid4().hex,
                   "username": "hydrogen", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    got: dict = {"stream": "", "result": None, "reply": None, "idle": False}
    deadline = time.monotonic() + 120
    while not (got["reply"] and got["idle"]):
        assert time.monotonic() < deadline, f"no answer in 120 s: {got}"
        message = json.loads(ws.recv())
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = message["msg_type"], message["content"]
        if kind == "stream" and content["name"] == "stdout":
            got["stream"] += content["text"]
        elif kind == "execute_result":
            got["result"] = content["data"]["text/plain"]
        elif kind == "error":
            got["error"] = content
        elif kind == "execute_reply":
            assert message["channel"] == "shell"
            got["reply"] = content
        elif kind == "status" and content["execution_state"] == "idle":
            got["idle"] = True
    return got


def test_hydrogen_settings_start_a_kernel_and_run_jax_through_the_gateway(access):
    import websocket

    gateways = access["data"]["access"]["hydrogen_gateways"]
    assert len(gateways) == 1
    options = gateways[0]["options"]
    base, token = options["baseUrl"], options["token"]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base) and len(token) >= 32

    status, specs = http("GET", f"{base}/api/kernelspecs", token)
    assert status == 200 and specs["default"] in specs["kernelspecs"], specs
    assert specs["kernelspecs"][specs["default"]]["spec"]["language"] == "python"
    status, kernel = http("POST", f"{base}/api/kernels", token, {"name": specs["default"]})
    assert status == 201 and kernel["id"], (status, kernel)
    kernel_url = f"{base}/api/kernels/{kernel['id']}"
    try:
        status, listed = http("GET", f"{base}/api/kernels", token)   # Hydrogen lists running kernels
        assert status == 200 and kernel["id"] in [k["id"] for k in listed]
        ws_base = base.replace("http://", "ws://", 1)
        channels = f"{ws_base}/api/kernels/{kernel['id']}/channels?session_id={uuid.uuid4().hex}"
        # @jupyterlab/services puts the token in the websocket's query; a header works as well
        for url, header in ((f"{channels}&token={token}", []), (channels, [f"Authorization: token {token}"])):
            ws = websocket.create_connection(url, header=header, timeout=120, http_no_proxy=["127.0.0.1"])
            try:
                got = execute(ws, f"import os\n{CODE}\nos.getuid()")
            finally:
                ws.close()
            assert got["reply"]["status"] == "ok", got
            assert got["stream"] == "90\n", got
            assert got["result"] == str(UID), got      # the kernel runs as the host user
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(channels, timeout=30, http_no_proxy=["127.0.0.1"])
        assert refused.value.status_code in (401, 403)
    finally:
        status, _ = http("DELETE", kernel_url, token)
        assert status == 204
    status, listed = http("GET", f"{base}/api/kernels", token)
    assert status == 200 and kernel["id"] not in [k["id"] for k in listed]


def test_the_gateway_refuses_calls_without_its_token(access):
    options = access["data"]["access"]["hydrogen_gateways"][0]["options"]
    base, token = options["baseUrl"], options["token"]
    status, running = http("GET", f"{base}/api/kernels", token)
    assert status == 200
    for token_given in (None, "0" * len(token)):
        assert http("GET", f"{base}/api/kernelspecs", token_given)[0] in (401, 403)
        assert http("GET", f"{base}/api/kernels", token_given)[0] in (401, 403)
        assert http("POST", f"{base}/api/kernels", token_given, {"name": "python3"})[0] in (401, 403)
    status, listed = http("GET", f"{base}/api/kernels", token)
    assert status == 200 and listed == running      # the refused POSTs started nothing


HYDROGEN = ROOT / "tests/integration/clients/hydrogen.js"


def hydrogen(gateway: dict, first: str, second: str) -> list[dict]:
    """Hydrogen's remote-kernel steps with its client library: one dict per step (clients/hydrogen.js)."""
    modules = Path(os.environ.get("GPUENV_TEST_HYDROGEN_CLIENT", ROOT / ".cache/npm/hydrogen")) / "node_modules"
    if not (modules / "@jupyterlab/services").is_dir():
        pytest.fail(f"no @jupyterlab/services in {modules}: run the tests through scripts/test "
                    "(ensure_hydrogen_client installs it)")
    env = {**os.environ, "NODE_PATH": str(modules), "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    run = subprocess.run(["node", str(HYDROGEN), json.dumps(gateway), first, second], env=env,
                         capture_output=True, text=True, timeout=300)
    steps = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert run.returncode == 0 and steps[-1]["step"] == "shut-down", (steps, run.stderr[-3000:])
    return steps


def test_hydrogen_connects_runs_code_and_reconnects_to_its_running_kernel_with_the_printed_settings(access):
    gateways = access["data"]["access"]["hydrogen_gateways"]
    assert len(gateways) == 1 and gateways[0]["options"]["token"], gateways
    steps = {s["step"]: s for s in hydrogen(gateways[0], f"import os\n{CODE}\nanswer = os.getuid()", "answer")}
    # no prompt for credentials: the kernelspecs came with the printed token, and the empty session
    # list answered as a gateway that lists none (Hydrogen offers a new session then, asks nothing)
    assert steps["kernelspecs"]["default"] in steps["kernelspecs"]["names"]
    assert steps["sessions"]["listed"] == "forbidden"
    assert steps["started"]["language"] == "python"
    assert steps["executed"] == {"step": "executed", "status": "ok", "stdout": "90\n", "result": None,
                                 "error": None}
    # disconnected, listed, and reconnected to by its id: the same kernel, its variables still there
    started, listed = steps["started"], steps["listed"]
    assert started["session"] in listed["sessions"] and listed["kernel"] == started["kernel"]
    assert steps["reconnected"] == {"step": "reconnected", "session": started["session"],
                                    "kernel": started["kernel"]}
    again = steps["executed-again"]
    assert again["status"] == "ok" and again["result"] == str(UID), again    # the kernel runs as the host user
    assert started["kernel"] in steps["kernels"]["ids"]
    assert steps["shut-down"]["listed"] == "forbidden"      # shut down: nothing left running
    status, kernels = http("GET", f"{gateways[0]['options']['baseUrl']}/api/kernels", gateways[0]["options"]["token"])
    assert status == 200 and started["kernel"] not in [k["id"] for k in kernels]


# --- the logs: nothing logged again and again for nothing ---------------------------------------------

NOISE = {
    "JupyterLab asking for the language-server extension": re.compile(r"GET /lsp/status"),
    "a health check or readiness probe refused": re.compile(r"\s40[13] GET /api[\s?]"),
    "a setting under an old name": re.compile(r"has moved from|config is deprecated"),
    "a successful call logged": re.compile(r"\s20[0-9] GET /api[\s?/]"),
}


def test_the_logs_hold_no_noise_after_a_page_load_and_two_health_checks(access, chromium):
    context = chromium.new_context()
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(access["data"]["access"]["jupyter_url"])
        page.locator(".jp-LabShell").wait_for(timeout=60_000)
        page.locator("#jp-main-statusbar").wait_for(timeout=60_000)
        time.sleep(25)      # two health checks (every 10 s), and JupyterLab's retries (10 s apart)
        assert not [e for e in errors if "plugin" in e.lower()], errors    # no plugin left without its service
    finally:
        context.close()
    found: dict[str, list[str]] = {}
    for name in access["data"]["containers"]:
        run = subprocess.run([os.environ.get("GPUENV_DOCKER", "docker"), "logs", name], capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        for line in (run.stdout + run.stderr).splitlines():
            for what in (w for w, pattern in NOISE.items() if pattern.search(line)):
                found.setdefault(f"{name}: {what}", []).append(line)
    assert found == {}, {k: v[:3] for k, v in found.items()}


@pytest.fixture(scope="module")
def classic_env(module_engine, tmp_path_factory):
    """The classic Notebook server (notebook 6, NotebookApp), as a spec that pins it gets it."""
    name = module_engine.unique("classic")
    folder = tmp_path_factory.mktemp("classic-project")
    (folder / "gpuenv.toml").write_text(f"""\
name = "{name}"
python = "3.11"
frameworks = ["jax"]
packages = ["notebook<7"]

[gpu]
devices = "none"

[access.jupyter]
mode = "notebook"
port = {free_port()}
""")
    os.chown(folder, UID, UID)
    env = isolated_home(tmp_path_factory)
    run = gpuenv("up", "--json", cwd=folder, env=env)
    yield {"run": run, "data": json.loads(run.stdout) if run.stdout.strip().startswith("{") else {}}
    gpuenv("down", "--volumes", cwd=folder, env=env, timeout=300)
    for cid in containers(module_engine, f"name={name}"):
        module_engine.docker("rm", "-f", "-v", cid, check=False)
    remove_images(module_engine, f"gpuenv-{name}")


def test_the_classic_notebook_takes_its_settings_by_their_names_and_asks_for_the_token(classic_env):
    run, data = classic_env["run"], classic_env["data"]
    assert run.returncode == 0, run.stderr[-4000:]
    url = data["access"]["jupyter_url"]
    base, token = url.split("/tree?token=")
    assert http("GET", f"{base}/api/contents", token)[0] == 200
    assert http("GET", f"{base}/api/contents")[0] == 403
    assert http("GET", f"{base}/api/contents", "0" * len(token))[0] == 403
    (name,) = data["containers"]
    logs = subprocess.run([os.environ.get("GPUENV_DOCKER", "docker"), "logs", name], capture_output=True,
                          text=True, timeout=60)
    text = logs.stdout + logs.stderr
    assert re.search(r"NotebookApp\] Jupyter Notebook 6\.", text), text[-3000:]   # the classic server ran
    assert "Serving notebooks from local directory: /workspace" in text, text[-3000:]
    noise = [ln for ln in text.splitlines() if NOISE["a setting under an old name"].search(ln)]
    assert noise == [], noise


# --- 3. SSH with the key gpuenv made ------------------------------------------------------------------

SSH_OPTIONS = ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR"]
REMOTE = 'python3 -c "import os, jax; print(os.getuid(), jax.__version__)"'


def test_the_printed_ssh_command_logs_in_with_the_key_gpuenv_made(access):
    home = Path(access["env"]["HOME"])
    key = home / ".ssh" / "gpuenv_ed25519"
    assert key.is_file() and key.with_suffix(".pub").is_file(), "gpuenv made no key in the isolated HOME"
    command = shlex.split(access["data"]["access"]["ssh_command"])
    assert command[0] == "ssh" and str(key) in command and command[-1].startswith("gpuenv@"), command
    run = subprocess.run([command[0], *SSH_OPTIONS, *command[1:], REMOTE], capture_output=True, text=True,
                         timeout=120, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    uid, version = run.stdout.split()
    assert int(uid) == UID
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), run.stdout


def test_ssh_refuses_another_key(access, tmp_path):
    other = tmp_path / "other_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    command = shlex.split(access["data"]["access"]["ssh_command"])
    at = command.index("-i")
    command[at + 1] = str(other)
    run = subprocess.run([command[0], *SSH_OPTIONS, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
                          *command[1:], REMOTE], capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 255 and "Permission denied (publickey)" in run.stderr, (run.returncode, run.stderr)
    assert run.stdout == ""


# --- 4. Ctrl-C in the middle of a build ---------------------------------------------------------------

def processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(pid) != os.getpid():
            found.append(f"{pid}: {cmdline[:300]}")
    return found


def read_lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


ENDED = re.compile(r"^(done|cached)\s+(?:[\d.]+s)?\s+(\[[^\]]+\])")


def ended_steps(lines: list[str], how: str) -> set[str]:
    """The Dockerfile steps ("[system 3/3]") the plain progress says ended `how` ("done", "cached")."""
    return {m.group(2) for m in map(ENDED.match, lines) if m and m.group(1) == how}


def test_ctrl_c_during_a_build_stops_it_cleanly_and_the_next_build_reuses_the_finished_steps(
        module_engine, tmp_path_factory):
    rand = random.Random()
    name = module_engine.unique("sigint")
    # Every step of this build is one no other build has: the mirror is deb.debian.org spelt in a case of
    # its own (an ARG of the first stage, so in every step's cache key), and the spec's packages name a
    # version no package has (a no-op for pip). So the steps before the interrupted one are built by the
    # interrupted build itself, and no concurrent build of the example (--no-cache or not) is merged
    # with them. The marker is on the first package: its step (matplotlib and its dependencies) is the
    # slow one, so Ctrl-C lands while it runs (each spec package has a step of its own).
    mirror = "http://" + "".join(c.upper() if rand.random() < 0.5 else c for c in "deb.debian.org")
    marker = f"0.0.{rand.randrange(10**8, 10**9)}"
    folder = tmp_path_factory.mktemp("sigint-project")
    spec = (ROOT / "examples/jax-cpu/gpuenv.toml").read_text()
    spec = spec.replace('name = "jax-cpu"', f'name = "{name}"').replace(
        'packages = ["matplotlib"]', f'packages = ["matplotlib!={marker}", "pandas"]')
    spec += f'\n[network]\napt_mirror = "{mirror}"\n'
    assert marker in spec and name in spec
    (folder / "gpuenv.toml").write_text(spec)
    os.chown(folder, UID, UID)
    # Planned from the knowledge base alone (GPUENV_OFFLINE): pip resolves the spec's packages in their step,
    # so the marker is on that step's RUN line (a resolved plan names only its pinned file there).
    env = {**os.environ, **isolated_home(tmp_path_factory), "SUDO_UID": str(UID), "SUDO_GID": str(UID),
           "COLUMNS": "4000", "GPUENV_OFFLINE": "1"}  # progress lines are cut to the width: keep the RUN line
    repository = f"gpuenv-{name}"
    before = set(containers(module_engine))
    # SIGINT default, as in a terminal's foreground job: a test run started in the background (`cmd &`)
    # hands its children SIGINT ignored, and Python then never raises KeyboardInterrupt.
    proc = subprocess.Popen([sys.executable, "-m", "gpuenv", "build"], cwd=folder, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lines: queue.Queue = queue.Queue()
        reader = threading.Thread(target=read_lines, args=(proc.stderr, lines), daemon=True)
        reader.start()
        seen: list[str] = []
        deadline = time.monotonic() + 900
        while True:     # until the step that installs the spec's packages is running
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                line = None
            if line is None:
                proc.kill()
                pytest.fail("the build ended, or never started the step, before Ctrl-C:\n" + "".join(seen)[-4000:])
            seen.append(line)
            if line.startswith("start") and "RUN" in line and marker in line:
                break
        assert processes_mentioning(marker), "the step's RUN is not running in the engine: " + line
        proc.send_signal(signal.SIGINT)     # Ctrl-C reaches gpuenv alone: it must stop the build itself
        code = proc.wait(timeout=120)
        reader.join(timeout=30)
        while not lines.empty():
            line = lines.get_nowait()
            if line is not None:
                seen.append(line)
        stderr, stdout = "".join(seen), proc.stdout.read()
        assert code == 130, (code, stderr[-3000:])
        assert "error: interrupted" in stderr and "Traceback" not in stderr + stdout, stderr[-3000:]
        assert not any(marker in ln and not ln.startswith("start") for ln in seen), \
            "the step had ended before Ctrl-C: " + stderr[-3000:]
        finished = ended_steps(seen, "done")
        # the system stage and the pip steps before the spec's packages (pip, jax, jupyterlab) were built
        assert any(s.startswith("[system ") for s in finished), stderr[-3000:]
        assert sum(s.startswith("[stage-1 ") for s in finished) >= 3, stderr[-3000:]

        # Nothing is left: no build step, no docker client, no container, no image.
        deadline = time.monotonic() + 30
        while (left := processes_mentioning(marker) + processes_mentioning(f"{repository}:")) \
                and time.monotonic() < deadline:
            time.sleep(0.5)
        assert left == [], left
        new = set(containers(module_engine)) - before
        mine = [c for c in new if name in module_engine.docker("inspect", c, check=False).stdout.decode()]
        assert mine == [], mine
        assert module_engine.docker("images", "-q", repository).stdout.decode().split() == []
        tag = next(ln.split("=", 1)[1] for ln in (folder / ".env").read_text().splitlines()
                   if ln.startswith("GPUENV_IMAGE="))
        assert tag.startswith(f"{repository}:")
        assert module_engine.docker("image", "inspect", tag, check=False).returncode != 0

        # The next build finishes, and reuses every step the interrupted one had finished.
        again = subprocess.run([sys.executable, "-m", "gpuenv", "build", "--json"], cwd=folder, env=env,
                               text=True, capture_output=True, timeout=1800)
        assert again.returncode == 0, again.stderr[-4000:]
        built = json.loads(again.stdout)
        assert built["built"] is True and built["image"] == tag
        steps = again.stderr.splitlines()
        assert finished <= ended_steps(steps, "cached"), again.stderr[-4000:]
        assert any(ln.startswith("done") and marker in ln for ln in steps), again.stderr[-4000:]
        assert module_engine.docker("image", "inspect", tag, check=False).returncode == 0
        made = [c for c in set(containers(module_engine)) - before
                if name in module_engine.docker("inspect", c, check=False).stdout.decode()]
        assert made == [], made     # a build makes no container, finished or not
    finally:
        if proc.poll() is None:
            proc.kill()
        remove_images(module_engine, repository)
