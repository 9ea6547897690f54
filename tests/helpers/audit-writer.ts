// A guest-side script (run with bun) for the power-cut tests: a client that
// asks the agent to restart the demo unit as fast as it is answered. Every
// answer is an audit record the agent writes and syncs, so a cut always
// falls among writes.
export const AUDIT_WRITER = `
const net = require("node:net");
const s = net.createConnection("/run/paio/agent.sock");
let n = 0;
const ask = () => s.write(JSON.stringify({ id: ++n, op: "call", tool: "unit.restart", args: { unit: "demo" } }) + "\\n");
s.on("connect", () => { for (let i = 0; i < 4; i++) ask(); });
s.on("data", (d) => { for (const _ of String(d).split("\\n").filter(Boolean)) ask(); });
s.on("error", () => process.exit(1));
`;
