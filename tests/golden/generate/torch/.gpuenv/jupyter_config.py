# Jupyter's settings in a gpuenv image, read from /etc/jupyter by JupyterLab, Notebook 7 (jupyter_server)
# and the classic Notebook alike. Written by `gpuenv generate`; no secret is in this file: the token
# (JUPYTER_TOKEN) or the hashed password (GPUENV_JUPYTER_PASSWORD_HASH) come from the environment,
# which compose fills from .env. Jupyter never starts open: with neither set, it refuses to start.
# Each setting goes under the name of the application that reads it, as the installed version calls it:
# the classic Notebook's NotebookApp, or jupyter_server's ServerApp and, from jupyter_server 2 on, its
# IdentityProvider; an old name makes the newer ones warn ("'ip' has moved from NotebookApp to ServerApp").
import os

c = get_config()  # noqa: F821 (defined by Jupyter when it reads this file)

token = os.environ.get("JUPYTER_TOKEN", "")
password = os.environ.get("GPUENV_JUPYTER_PASSWORD_HASH", "")
if not token and not password:
    raise SystemExit("gpuenv: Jupyter needs a token or a password: set JUPYTER_TOKEN (or "
                     "GPUENV_JUPYTER_PASSWORD_HASH) in the environment; compose reads both from .env")
workspace = os.environ.get("GPUENV_WORKSPACE", os.getcwd())


def classic_notebook():
    """Whether the application reading this file is the classic Notebook server (notebook < 7)."""
    from traitlets.config import Application

    app = Application.instance() if Application.initialized() else None
    return type(app).__module__.startswith("notebook.notebookapp")


def server_major():
    try:
        import jupyter_server
    except ImportError:
        return 0
    return int(jupyter_server.__version__.split(".")[0])


def listen(app):
    app.ip = "0.0.0.0"                     # inside the container; the host publishes it on 127.0.0.1
    app.port = int(os.environ.get("GPUENV_JUPYTER_PORT", "8888"))
    app.open_browser = False
    app.allow_root = os.getuid() == 0      # only when the host user is root, who the container runs as


def authenticate(app, identity):
    """The token, or the password alone; `identity` is jupyter_server 2's IdentityProvider, else the app."""
    identity.token = "" if password else token
    if password:
        if identity is app:
            app.password = password
        else:
            c.PasswordIdentityProvider.hashed_password = password


def language_servers():
    """Whether a language server is installed: the language-server extension only scans for them at
    start (half a second on a small machine)."""
    try:
        from importlib.util import find_spec
    except ImportError:                     # Python 2: no importlib.util, and no jupyter_lsp either
        return False
    return find_spec("pylsp") is not None or find_spec("jedi_language_server") is not None


def without_language_servers():
    """The server extension off, and JupyterLab's language-server plugins with it: enabled, they ask for
    /lsp/status at every page load, a 404 in the log where the extension is off. The page's settings
    are read from disk after tornado_settings' page_config_data, so a hook adds to them."""
    c.ServerApp.jpserver_extensions = {"jupyter_lsp": False}
    c.ServerApp.tornado_settings = {"page_config_hook": no_language_server_plugins}


# JupyterLab's language-server plugins: the package that asks, and those that need its service
LANGUAGE_SERVER_PLUGINS = ("@jupyterlab/lsp-extension", "@jupyterlab/fileeditor-extension:language-server",
                           "@jupyterlab/notebook-extension:language-server")


def no_language_server_plugins(handler, page_config):
    disabled = page_config.get("disabledExtensions") or []
    if isinstance(disabled, dict):
        disabled = [name for name, off in disabled.items() if off]
    page_config["disabledExtensions"] = list(disabled) + [p for p in LANGUAGE_SERVER_PLUGINS if p not in disabled]
    return page_config


if classic_notebook():
    listen(c.NotebookApp)
    authenticate(c.NotebookApp, c.NotebookApp)
    c.NotebookApp.notebook_dir = workspace
    # JupyterLab 3 and 4, where installed beside it, load into the classic server as an extension and
    # warn about every NotebookApp setting ("'ip' has moved"), which this server needs under that name:
    # the classic server serves the classic notebook alone (JupyterLab is the other `mode`).
    c.NotebookApp.nbserver_extensions = {"jupyterlab": False}
else:
    listen(c.ServerApp)
    authenticate(c.ServerApp, c.IdentityProvider if server_major() >= 2 else c.ServerApp)
    c.ServerApp.root_dir = workspace
    if not language_servers():
        without_language_servers()
