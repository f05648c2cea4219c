# The Jupyter Kernel Gateway in a gpuenv image, for Atom Hydrogen and other remote-kernel clients.
# Written by `gpuenv generate`; the token comes from KG_AUTH_TOKEN (compose fills it from .env), and
# the gateway refuses to start without one.
import os

c = get_config()  # noqa: F821 (defined by Jupyter when it reads this file)

if not os.environ.get("KG_AUTH_TOKEN"):
    raise SystemExit("gpuenv: the kernel gateway needs a token: set KG_AUTH_TOKEN in the environment; "
                     "compose reads it from .env (GPUENV_GATEWAY_TOKEN)")
c.KernelGatewayApp.ip = "0.0.0.0"
c.KernelGatewayApp.port = int(os.environ.get("GPUENV_GATEWAY_PORT", "8889"))
c.KernelGatewayApp.auth_token = os.environ["KG_AUTH_TOKEN"]
c.JupyterWebsocketPersonality.list_kernels = True   # Hydrogen lists and reconnects to running kernels
