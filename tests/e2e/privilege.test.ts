// Privilege and tampering on a booted device: who may do what on the control
// and agent sockets (docs/control.md: root everything, group `paio` reads,
// everyone else nothing), what a unit running as another user can reach
// (not out of its cgroup, not the supervisor, the agent or PID 1), and links
// planted in the units and logs folders (they lead nowhere).
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Guest } from "../../qemu/guest.ts";
import { ALL_OPS, READ_OPS } from "../../init/control/protocol.ts";
import { bootGuest, consoleLine, sh } from "../helpers/guest.ts";

/** One valid request per op (each passes validateRequest), so a refusal can only come from the peer check. */
const REQUESTS: Record<string, object> = {
  list: { op: "list" },
  status: { op: "status", unit: "demo" },
  start: { op: "start", unit: "demo" },
  stop: { op: "stop", unit: "demo" },
  restart: { op: "restart", unit: "demo" },
  reload: { op: "reload" },
  logs: { op: "logs", unit: "demo", lines: 5 },
  "set-limits": { op: "set-limits", unit: "demo", limits: { cpu_max: "10%" } },
  "set-task-priority": { op: "set-task-priority", unit: "demo", nice: 5 },
  freeze: { op: "freeze", unit: "demo", frozen: true },
  "mark-failed": { op: "mark-failed", unit: "demo", reason: "tampering test" },
  contain: { op: "contain", pid: 2, how: "freeze" },
  subscribe: { op: "subscribe" },
  publish: { op: "publish", event: { event: "network", kind: "link-down", message: "forged", time: 1 } },
  signal: { op: "signal", unit: "demo", signal: "SIGHUP" },
  "set-ports": { op: "set-ports", unit: "demo", ports: ["1/tcp"] },
};

const AGENT_REQUESTS: Record<string, object> = {
  status: { op: "status" },
  subscribe: { op: "subscribe" },
  "call unit.list": { op: "call", tool: "unit.list", args: {} },
  "call unit.restart": { op: "call", tool: "unit.restart", args: { unit: "demo" }, confirmed: true },
  "call process.kill": { op: "call", tool: "process.kill", args: { pid: 1 }, confirmed: true },
  "call agent.mode": { op: "call", tool: "agent.mode", args: { mode: "off" }, confirmed: true },
};

/** A Bun script for the guest: sends each request on its own connection and prints `NAME => first answer`. */
function probe(socket: string, requests: Record<string, object>): string {
  return `
const requests = ${JSON.stringify(requests)};
for (const [name, req] of Object.entries(requests)) {
  const answer = await new Promise((resolve) => {
    let buf = "";
    const timer = setTimeout(() => resolve("(no answer)"), 5000);
    Bun.connect({ unix: ${JSON.stringify(socket)}, socket: {
      open(s) { s.write(JSON.stringify({ id: 1, ...req }) + "\\n"); },
      data(s, d) { buf += Buffer.from(d).toString(); const i = buf.indexOf("\\n"); if (i >= 0) { clearTimeout(timer); s.end(); resolve(buf.slice(0, i)); } },
      close() { clearTimeout(timer); resolve(buf || "(closed)"); },
      error() {},
    } }).catch((e) => { clearTimeout(timer); resolve("(connect: " + e.code + ")"); });
  });
  console.log(name + " => " + answer);
}
process.exit(0);
`;
}

/** The answers of a probe run, by request name. */
function answers(out: string): Map<string, { ok?: boolean; error?: { code: string; message: string }; result?: { status?: string } }> {
  const m = new Map();
  for (const line of out.split("\n")) {
    const at = line.indexOf(" => ");
    if (at < 0) continue;
    try {
      m.set(line.slice(0, at), JSON.parse(line.slice(at + 4)));
    } catch {
      m.set(line.slice(0, at), { raw: line.slice(at + 4) });
    }
  }
  return m;
}

/** What no refused request may change: every unit's state, pid, restarts and ports, and demo's cgroup settings. */
const SNAPSHOT = `echo "SNAP $(paio --json units | bun -e 'const u = JSON.parse(await Bun.stdin.text()); console.log(JSON.stringify(u.map((x) => [x.name, x.state, x.pid, x.restarts, x.ports])))') $(cat /sys/fs/cgroup/paio/demo/cpu.max /sys/fs/cgroup/paio/demo/cgroup.freeze | tr '\\n' ' ')"`;

describe("privilege and tampering", () => {
  let guest: Guest;
  beforeAll(async () => {
    guest = await bootGuest();
    // The agent must not act during these tests: anything that changes is then the tests' doing.
    await sh(guest, "for i in $(seq 1 90); do paio agent mode off >/dev/null 2>&1 && break; sleep 1; done; paio status demo | head -n 1");
  }, 400_000);
  afterAll(async () => {
    if (guest && !guest.exited) expect(await guest.shutdown()).toBe(0);
  }, 120_000);

  /** Sends every request as `monitor` (group paio) and as `nobody`, between two snapshots of the supervisor's view; `after` runs last. */
  async function probeAs(socket: string, requests: Record<string, object>, monitorFirst: string, after = "") {
    const out = await sh(guest, `
cat > /tmp/probe.js <<'JS'
${probe(socket, requests)}
JS
${SNAPSHOT}
echo "--- monitor"; su -s /bin/sh monitor -c '${monitorFirst}bun /tmp/probe.js'
echo "--- nobody"; su -s /bin/sh nobody -c 'bun /tmp/probe.js'
${SNAPSHOT}
${after}`, 240_000);
    const [monitorOut, nobodyOut] = out.split("--- monitor")[1]!.split("--- nobody");
    const snaps = [...out.matchAll(/^SNAP (.*)$/gm)].map((m) => m[1]);
    return { out, monitorOut: monitorOut!, monitor: answers(monitorOut!), nobody: answers(nobodyOut!), snaps };
  }

  test("the control socket: group paio gets exactly the read operations, everyone else nothing; refused requests change nothing", async () => {
    expect(Object.keys(REQUESTS).sort()).toEqual([...ALL_OPS].sort());
    const { monitorOut, monitor, nobody, snaps } = await probeAs("/run/paio/control.sock", REQUESTS, "id -Gn; ");
    expect(monitorOut).toMatch(/\bpaio\b/); // monitor is in group paio
    for (const op of ALL_OPS) {
      const a = monitor.get(op);
      if ((READ_OPS as readonly string[]).includes(op)) expect(a, `monitor ${op}`).toMatchObject({ ok: true });
      else expect(a, `monitor ${op}`).toMatchObject({ ok: false, error: { code: "not-permitted", message: `'${op}' needs root; members of group 'paio' may only read` } });
      expect(nobody.get(op), `nobody ${op}`).toMatchObject({ ok: false, error: { code: "not-permitted" } });
    }
    expect(snaps).toHaveLength(2);
    expect(snaps[0]).toContain('"demo","running"');
    expect(snaps[1]).toBe(snaps[0]);
  }, 300_000);

  test("the agent socket: group paio may read and run read-only tools, not change anything; everyone else is refused", async () => {
    const { out, monitor, nobody, snaps } = await probeAs("/run/paio/agent.sock", AGENT_REQUESTS, "", "paio agent | head -n 1");
    expect(monitor.get("status")).toMatchObject({ ok: true });
    expect(monitor.get("subscribe")).toMatchObject({ ok: true });
    expect(monitor.get("call unit.list")?.result?.status).not.toBe("refused");
    for (const name of ["call unit.restart", "call process.kill", "call agent.mode"]) {
      expect(monitor.get(name), `monitor ${name}`).toMatchObject({ ok: true, result: { status: "refused" } });
    }
    for (const name of Object.keys(AGENT_REQUESTS)) expect(nobody.get(name), `nobody ${name}`).toMatchObject({ ok: false, error: { code: "not-permitted" } });
    expect(snaps[1]).toBe(snaps[0]);
    expect(out).toMatch(/^mode off;/m); // the mode a refused agent.mode would have changed is still off
  }, 300_000);

  test("a unit running as another user cannot leave its cgroup, raise its limits, or signal the supervisor, the agent, PID 1 or another unit", async () => {
    const out = await sh(guest, `
sup=$(pgrep /usr/lib/paio/supervisor.js); agent=$(paio --json status agent | sed -n 's/.*"pid": *\\([0-9]*\\).*/\\1/p' | head -n 1)
demo=$(paio --json status demo | sed -n 's/.*"pid": *\\([0-9]*\\).*/\\1/p' | head -n 1)
echo "before sup=$sup agent=$agent demo=$demo"
cat > /var/lib/paio/intruder.sh <<SH
#!/bin/sh
try() { if sh -c "\\$1" 2>/dev/null; then echo "ALLOWED: \\$2"; else echo "refused: \\$2"; fi; }
try 'echo \\$\\$ > /sys/fs/cgroup/cgroup.procs' "move itself to the root cgroup"
try 'echo \\$PPID > /sys/fs/cgroup/paio/demo/cgroup.procs' "move into another unit's cgroup"
try 'mkdir /sys/fs/cgroup/paio/intruder/escape' "make a child cgroup"
try 'echo max > /sys/fs/cgroup/paio/intruder/memory.max' "raise its own memory limit"
try 'echo max > /sys/fs/cgroup/paio/intruder/pids.max' "raise its own process limit"
try 'kill -TERM $sup' "signal the supervisor"
try 'kill -KILL $agent' "kill the agent"
try 'kill -TERM 1' "signal PID 1"
try 'kill -STOP $demo' "stop another unit"
try 'echo x >> /var/lib/paio/units/demo.toml' "write a unit file"
try 'paio stop demo' "stop a unit through the control socket"
echo "intruder done"
exec sleep 1000
SH
chmod 755 /var/lib/paio/intruder.sh
printf 'exec = ["/var/lib/paio/intruder.sh"]\\nuser = "monitor"\\n' > /var/lib/paio/units/intruder.toml
paio reload >/dev/null
i=0; while ! grep -q "intruder done" /var/lib/paio/logs/intruder.log 2>/dev/null && [ $i -lt 100 ]; do sleep 0.3; i=$((i+1)); done
cat /var/lib/paio/logs/intruder.log
ipid=$(paio --json status intruder | sed -n 's/.*"pid": *\\([0-9]*\\).*/\\1/p' | head -n 1)
echo "intruder cgroup: $(cat /proc/$ipid/cgroup) uid: $(awk '/^Uid:/ {print $2}' /proc/$ipid/status)"
echo "after sup=$(pgrep /usr/lib/paio/supervisor.js) agent=$(paio --json status agent | sed -n 's/.*"pid": *\\([0-9]*\\).*/\\1/p' | head -n 1) demo=$(paio --json status demo | sed -n 's/.*"pid": *\\([0-9]*\\).*/\\1/p' | head -n 1)"
grep State /proc/$demo/status
cat /sys/fs/cgroup/paio/intruder/memory.max /sys/fs/cgroup/paio/intruder/pids.max
paio stop intruder >/dev/null; rm /var/lib/paio/units/intruder.toml; paio reload >/dev/null`, 240_000);
    expect(out).toContain("intruder done");
    expect(out).not.toContain("ALLOWED");
    expect(out.match(/^refused: /gm)).toHaveLength(11);
    expect(out).toMatch(/intruder cgroup: 0::\/paio\/intruder uid: 100/);
    const before = /before (sup=\d+ agent=\d+ demo=\d+)/.exec(out)![1];
    expect(out).toContain(`after ${before}`);
    expect(out).not.toMatch(/State:\s+T/);
  }, 300_000);

  test("links planted in the units and logs folders lead nowhere: no unit is loaded through one, no output or 'paio logs' goes through one", async () => {
    const out = await sh(guest, `
umask 077
printf 'exec = ["/bin/sh", "-c", "echo LEAKED > /tmp/leak; exec sleep 1000"]\\n# SECRET-7f3a\\n' > /var/lib/paio/secret.toml
sha=$(sha256sum /var/lib/paio/secret.toml)
ln -s /var/lib/paio/secret.toml /var/lib/paio/units/peek.toml
ln /var/lib/paio/secret.toml /var/lib/paio/units/hard.toml
ln -s /var/lib/paio/secret.toml /var/lib/paio/logs/talker.log
printf 'exec = ["/bin/sh", "-c", "while true; do echo talk; sleep 0.3; done"]\\n' > /var/lib/paio/units/talker.toml
paio reload 2>&1 | sed 's/^/reload: /'
rm -f /var/lib/paio/logs/demo.log; ln -s /var/lib/paio/secret.toml /var/lib/paio/logs/demo.log
echo "monitor logs: $(su -s /bin/sh monitor -c 'paio logs demo' 2>&1 | tr '\\n' ' ')"
sleep 3
echo "secret unchanged: $([ "$(sha256sum /var/lib/paio/secret.toml)" = "$sha" ] && echo yes || echo NO)"
echo "leak: $(cat /tmp/leak 2>/dev/null || echo none)"
echo "talker log: $(stat -c %F /var/lib/paio/logs/talker.log), $(grep -c talk /var/lib/paio/logs/talker.log) lines; aside: $(stat -c %F /var/lib/paio/logs/talker.log.refused)"
echo "loaded through a link: $(paio units | grep -c -E '^ *(peek|hard|secret) ')"
paio stop talker >/dev/null; rm -f /var/lib/paio/units/peek.toml /var/lib/paio/units/hard.toml /var/lib/paio/units/talker.toml; paio reload >/dev/null`, 240_000);
    expect(out).toMatch(/reload: .*peek\.toml: a symbolic link to \/var\/lib\/paio\/secret\.toml; PAIO reads only regular files/);
    expect(out).toMatch(/reload: .*hard\.toml: a hard link \(2 names for one file\)/);
    expect(out).not.toContain("SECRET-7f3a");
    expect(out).toContain("secret unchanged: yes");
    expect(out).toContain("leak: none");
    expect(out).toMatch(/talker log: regular file, [1-9]\d* lines; aside: symbolic link/);
    expect(out).toContain("loaded through a link: 0");
    await consoleLine(guest, /talker: its log \/var\/lib\/paio\/logs\/talker\.log was a symbolic link to \/var\/lib\/paio\/secret\.toml; moved aside/);
  }, 300_000);
});
