# Jupyter's settings in a gpuenv image, read from /etc/jupyter by JupyterLab, Notebook 7 (jupyter_server)
# and the classic Notebook alike. Written by `gpuenv generate`; no secret is in this file: the token
# (JUPYTER_TOKEN) or the hashed password (GPUENV_JUPYTER_PASSWORD_HASH) come from the environment,
# which compose fills from .env. Jupyter never starts open: with neither set, it refuses to start.
import os

c = get_config()  # noqa: F821 (defined by Jupyter when it reads this file)

token = os.environ.get("JUPYTER_TOKEN", "")
password = os.environ.get("GPUENV_JUPYTER_PASSWORD_HASH", "")
if not token and not password:
    raise SystemExit("gpuenv: Jupyter needs a token or a password: set JUPYTER_TOKEN (or "
                     "GPUENV_JUPYTER_PASSWORD_HASH) in the environment; compose reads both from .env")
workspace = os.environ.get("GPUENV_WORKSPACE", os.getcwd())

for app in (c.ServerApp, c.NotebookApp):
    app.ip = "0.0.0.0"                     # inside the container; the host publishes it on 127.0.0.1
    app.port = int(os.environ.get("GPUENV_JUPYTER_PORT", "8888"))
    app.open_browser = False
    app.allow_root = os.getuid() == 0      # only when the host user is root, who the container runs as
    app.token = "" if password else token
    if password:
        app.password = password
c.ServerApp.root_dir = workspace
c.NotebookApp.notebook_dir = workspace
c.IdentityProvider.token = "" if password else token
if password:
    c.PasswordIdentityProvider.hashed_password = password

# The language-server extension only scans for servers at start (half a second on a small machine);
# it is loaded when one is installed (python-lsp-server, the common one), else left off.
try:
    from importlib.util import find_spec
    if find_spec("pylsp") is None and find_spec("jedi_language_server") is None:
        c.ServerApp.jpserver_extensions = {"jupyter_lsp": False}
except ImportError:                         # Python 2: no importlib.util, and no jupyter_lsp either
    pass
