# The Jupyter Kernel Gateway in a gpuenv image, for Atom Hydrogen and other remote-kernel clients.
# Written by `gpuenv generate`; the token comes from KG_AUTH_TOKEN (compose fills it from .env), and
# the gateway refuses to start without one. Runs on every gateway gpuenv installs: 3.x (jupyter_server 2)
# on current Pythons, 2.x (notebook 5/6) on old ones.
import inspect
import logging
import os

c = get_config()  # noqa: F821 (defined by Jupyter when it reads this file)

if not os.environ.get("KG_AUTH_TOKEN"):
    raise SystemExit("gpuenv: the kernel gateway needs a token: set KG_AUTH_TOKEN in the environment; "
                     "compose reads it from .env (GPUENV_GATEWAY_TOKEN)")
c.KernelGatewayApp.ip = "0.0.0.0"
c.KernelGatewayApp.port = int(os.environ.get("GPUENV_GATEWAY_PORT", "8889"))
c.KernelGatewayApp.auth_token = os.environ["KG_AUTH_TOKEN"]
# Listing on: Hydrogen offers the running sessions, so a kernel left running (Atom closed, a GPU's
# memory held) is found again, reconnected to or shut down. Off, every reconnect starts a new kernel.
c.JupyterWebsocketPersonality.list_kernels = True


class FailedRequestsOnly(logging.Filter):
    """The gateway's web server logs every answered request at info level, the health check's every
    10 s among them; Jupyter's server logs those at debug. Here, as there: refusals and errors only."""

    def filter(self, record):
        return record.levelno > logging.INFO


logging.getLogger("tornado.access").addFilter(FailedRequestsOnly())


def _listing_never_empty(base):
    """A session manager whose empty list answers 403, as a gateway with listing off does. Hydrogen
    (2.16.3 on: nteract/hydrogen dc2a205, "prompt for authentication if there are no sessionModels")
    takes an empty list for a failed login and asks for a token or a cookie, although its settings
    carry the token; a 403 it takes for "this gateway lists no sessions" and offers a new one. Once a
    session runs, the list shows it and Hydrogen offers to reconnect."""

    class ListingNeverEmpty(base):
        def list_sessions(self, *args, **kwargs):
            sessions = base.list_sessions(self, *args, **kwargs)
            if not sessions:
                from tornado import web
                raise web.HTTPError(403, "no session is running (gpuenv: an empty list makes Hydrogen "
                                         "ask for credentials)")
            return sessions

    return ListingNeverEmpty


class _Answer(object):
    """A value to await (`await x` gives x.value); no `async def`: Python 2 compiles this file too."""

    def __init__(self, value):
        self.value = value

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        raise StopIteration(self.value)


def _awaitable(base):
    """Kernel gateway 3.0.1's in-memory session manager answers synchronously where jupyter_server 2's
    session handlers await it: GET /api/sessions/ID, PATCH, and a POST for a path that has a session
    fail with HTTP 500 ("object dict can't be used in 'await' expression"). GET /api/sessions/ID is
    @jupyterlab/services' Session.connectTo: how Hydrogen reconnects to a running kernel. Gateway 3.0.1,
    the newest, requires jupyter_server>=2.12, whose handlers await (jupyter_server 2.0 dropped their
    ensure_async); the gateway's sessions/sessionmanager.py answers synchronously since its port to
    jupyter_server (jupyter-server/kernel_gateway acf6175, "Initial pass, imports and async/await");
    no release fixes it, so no pinned pair does. This subclass answers those calls awaitably, from the
    gateway's own data."""

    class AwaitableSessions(base):
        def get_session(self, **kwargs):
            return _Answer(base.get_session(self, **kwargs))

        def update_session(self, session_id, *args, **kwargs):
            return _Answer(base.update_session(self, session_id, *args, **kwargs))

        def save_session(self, session_id, path=None, kernel_id=None, *args, **kwargs):
            # the base's save_session ends with self.get_session, awaitable now: look up as it did
            self._sessions.append({"session_id": session_id, "path": path, "kernel_id": kernel_id})
            return base.get_session(self, session_id=session_id)

    return AwaitableSessions


def _handlers_await(app):
    """Whether the gateway's session handlers are jupyter_server 2's, which await the session manager."""
    from kernel_gateway.services.sessions import handlers

    server = [k for k in handlers.SessionRootHandler.__mro__ if k.__module__.startswith("jupyter_server.")]
    if not server:
        return False              # gateway 2.x on notebook 5/6: its handlers take answers as they come
    import jupyter_server
    return int(jupyter_server.__version__.split(".")[0]) >= 2 and \
        not inspect.iscoroutinefunction(app.SessionManager.get_session)


def _patch_session_manager():
    try:
        import kernel_gateway.gatewayapp as app
    except ImportError:           # read by another application: nothing to change
        return
    base = app.SessionManager
    if _handlers_await(app):
        base = _awaitable(base)
    app.SessionManager = _listing_never_empty(base)


_patch_session_manager()
