// Atom Hydrogen's remote-kernel steps (lib/ws-kernel-picker.ts and lib/ws-kernel.ts of nteract/hydrogen
// 2.16), with the client library it ships, @jupyterlab/services 0.52, over `ws` and `xmlhttprequest` as
// in Atom. Usage: node hydrogen.js GATEWAY_JSON FIRST_CODE SECOND_CODE
//   GATEWAY_JSON  one entry of Hydrogen's "Kernel Gateways" setting: {"name": ..., "options": {...}}
// Prints one JSON object per step on stdout; exits 1 with {"step": "error", ...} on the first failure.
// Where Hydrogen would ask for credentials (a refused kernelspec list, or an empty session list), the
// step says so ("prompt") and the run stops: a user would have been asked.
"use strict";
console.log = console.error;     // the library logs its websocket's life on stdout: keep stdout to the steps
const { Kernel, Session, ServerConnection } = require("@jupyterlab/services");
const WebSocket = require("ws");
const { XMLHttpRequest } = require("xmlhttprequest");

const [gateway, firstCode, secondCode] = [JSON.parse(process.argv[2]), process.argv[3], process.argv[4]];
const settings = ServerConnection.makeSettings({
  xhrFactory: () => new XMLHttpRequest(),
  wsFactory: (url, protocol) => new WebSocket(url, protocol),
  ...gateway.options,
});

function report(step, fields) {
  process.stdout.write(JSON.stringify({ step, ...fields }) + "\n");
}

class Prompted extends Error {}

function status(error) {
  return error && error.xhr ? error.xhr.status : undefined;
}

// Hydrogen's onGateway: a failed kernelspec list with a server answer means "ask for credentials".
async function kernelspecs() {
  try {
    return await Kernel.getSpecs(settings);
  } catch (error) {
    if (status(error) !== undefined) throw new Prompted(`kernelspecs answered ${status(error)}`);
    throw error;
  }
}

// Hydrogen's session list: 403 is "this gateway lists no sessions" (it offers a new one); an empty
// list makes it ask for credentials (nteract/hydrogen dc2a205).
async function sessions() {
  try {
    const models = await Session.listRunning(settings);
    if (models.length === 0) throw new Prompted("the session list is empty");
    return models;
  } catch (error) {
    if (status(error) === 403) return null;
    throw error;
  }
}

// WSKernel.execute: requestExecute, IOPub messages and the shell reply.
async function execute(session, code) {
  const future = session.kernel.requestExecute({ code });
  const got = { stdout: "", result: null, error: null };
  future.onIOPub = (msg) => {
    const type = msg.header.msg_type;
    if (type === "stream" && msg.content.name === "stdout") got.stdout += msg.content.text;
    if (type === "execute_result") got.result = msg.content.data["text/plain"];
    if (type === "error") got.error = `${msg.content.ename}: ${msg.content.evalue}`;
  };
  const reply = await future.done;
  return { status: reply.content.status, ...got };
}

async function main() {
  const specs = await kernelspecs();
  report("kernelspecs", { default: specs.default, names: Object.keys(specs.kernelspecs) });
  const before = await sessions();
  report("sessions", { listed: before === null ? "forbidden" : before.map((m) => m.id) });

  // [new session] for the default kernel, its path Hydrogen's `${filePath}-${uuid}`
  const session = await Session.startNew({ serverSettings: settings, kernelName: specs.default,
                                           path: `/home/user/project/script.py-${process.pid}` });
  const spec = await session.kernel.getSpec();
  report("started", { session: session.id, kernel: session.kernel.id, language: spec.language });
  report("executed", await execute(session, firstCode));
  session.dispose();     // Atom closed: the connection goes, the kernel stays
  report("disconnected", {});

  const listed = await sessions();
  if (listed === null) throw new Error("the running session is not listed: Hydrogen cannot offer it");
  const model = listed.find((m) => m.id === session.id);
  report("listed", { sessions: listed.map((m) => m.id), kernel: model ? model.kernel.id : null });
  if (!model) throw new Error(`session ${session.id} is not in the list`);

  const again = await Session.connectTo(model.id, settings);    // "the 500 case"
  report("reconnected", { session: again.id, kernel: again.kernel.id });
  report("executed-again", await execute(again, secondCode));

  const kernels = await Kernel.listRunning(settings);
  report("kernels", { ids: kernels.map((k) => k.id) });
  await again.shutdown();
  const after = await sessions();
  report("shut-down", { listed: after === null ? "forbidden" : after.map((m) => m.id) });
}

main().then(() => process.exit(0), (error) => {
  if (error instanceof Prompted) report("prompt", { why: error.message });
  else report("error", { message: String(error && error.message || error), status: status(error),
                         body: error && error.xhr ? error.xhr.responseText : undefined });
  process.exit(1);
});
