// The agent in QEMU, on real cgroups, with workload units the test installs:
// a crash loop healed and learned from, a memory leak stopped before the OOM
// killer, a CPU hog tamed for a latency-sensitive web unit, a hog outside
// every unit contained, and kill -9 of the agent. Figures are printed.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Guest } from "../../qemu/guest.ts";
import { bootGuest, sh } from "../helpers/guest.ts";

let g: Guest;

const UNITS: Record<string, string> = {
  // Crashes (exit 3) while its memory limit is under 48 MiB.
  flaky: `exec = ["/bin/sh", "-c", "m=$(cat /sys/fs/cgroup/paio/flaky/memory.max); if [ \\"$m\\" != max ] && [ \\"$m\\" -lt 50331648 ]; then echo too small: $m; sleep 0.5; exit 3; fi; exec sleep 100000"]
restart = "always"
restart_delay = "200ms"
restart_delay_max = "1s"
start_limit = { burst = 100, interval = "60s" }
[limits]
memory_max = "32M"
`,
  // Leaks 1 MiB of tmpfs (charged to its cgroup) every half second, towards its 64 MiB limit.
  leaky: `exec = ["/bin/sh", "-c", "rm -f /run/leak; while true; do dd if=/dev/zero bs=1M count=1 2>/dev/null >> /run/leak; sleep 0.5; done"]
restart = "always"
[limits]
memory_max = "64M"
`,
  web: `exec = ["/bin/sh", "-c", "mkdir -p /run/www && echo ok > /run/www/index.html && exec httpd -f -p 8080 -h /run/www"]
restart = "always"
latency_sensitive = true
[health]
type = "http"
target = "http://127.0.0.1:8080/"
interval = "3s"
timeout = "2500ms"
retries = 10
grace = "2s"
`,
};

const HOG = `exec = ["/bin/sh", "-c", "for i in 1 2 3 4; do (while true; do :; done) & done; wait"]\nrestart = "always"\n`;

async function json<T>(script: string): Promise<T> {
  return JSON.parse(await sh(g, script)) as T;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await Bun.sleep(1000);
  }
}

interface AuditRow { seq: number; kind: string; body: Record<string, unknown> }
const why = (unit: string) => json<AuditRow[]>(`paio --json why ${unit}`);

beforeAll(async () => {
  g = await bootGuest({ cpus: 2 });
  const files = Object.entries(UNITS).map(([n, t]) => `cat > /var/lib/paio/units/${n}.toml <<'UNIT'\n${t}UNIT`).join("\n");
  await sh(g, `mkdir -p /var/lib/paio/units
# Under TCG everything costs ten times more: a bigger CPU budget keeps the agent ticking every second.
printf '[agent]\\noutcome_window = "8s"\\ncooldown = "1s"\\ncpu_budget_percent = 50\\n' > /var/lib/paio/agent.toml
${files}
paio restart agent >/dev/null
paio reload`);
}, 600_000);

afterAll(async () => {
  await g?.shutdown().catch(() => g.kill());
});

describe("agent in QEMU", () => {
  test("the agent runs as a unit and says which scheduling interface it uses", async () => {
    const out = await until("agent ready", async () => {
      const log = await sh(g, "paio logs agent -n 50");
      return /paio-agent: ready/.test(log) ? log : undefined;
    }, 120_000);
    // The image's kernel has both hints (kernel-patches/); tests/e2e/watchdog.test.ts boots a stock one.
    expect(out).toMatch(/scheduling through per-task latency nice and cpu\.latency\.nice \(patched kernel\)/);
    // PAIO's programs name themselves: the process list shows them, not three "bun"s.
    const agent = await json<{ pid: number }>("paio --json status agent");
    const names = await sh(g, `cat /proc/$(cat /run/paio/supervisor.pid)/comm /proc/${agent.pid}/comm`);
    expect(names).toBe("paio-supervisor\npaio-agent\n");
  }, 180_000);

  test("a crash loop: the ladder climbs to the remedy that works; the second time, that remedy comes first", async () => {
    const first = await until("flaky healed", async () => {
      const rows = await why("flaky");
      return rows.some((r) => r.kind === "outcome" && r.body.success === true) ? rows : undefined;
    }, 240_000);
    const acted = first.filter((r) => r.kind === "decision" && r.body.executed === true).map((r) => r.body.remedy);
    expect(acted).toEqual(["restart", "restart-with-limits"]);
    const st = await json<{ state: string; limits: { memory_max: number } }>("paio --json status flaky");
    expect(st.state).toBe("running");
    expect(st.limits.memory_max).toBe(64 * 2 ** 20);

    // The same trouble again: the limit goes back down.
    const seqBefore = Math.max(...first.map((r) => r.seq));
    await sh(g, "paio limit flaky --memory 32M >/dev/null; paio restart flaky >/dev/null");
    const second = await until("flaky healed again", async () => {
      const rows = (await why("flaky")).filter((r) => r.seq > seqBefore);
      return rows.some((r) => r.kind === "outcome") ? rows : undefined;
    }, 240_000);
    const firstTry = second.find((r) => r.kind === "decision" && r.body.executed === true)!;
    expect(firstTry.body.remedy).toBe("restart-with-limits");
    expect(String(firstTry.body.justification)).toMatch(/It has worked 1 of 1 times for this trouble before/);
    console.log(`crash loop: first incident tried ${acted.join(" -> ")}; second incident tried ${firstTry.body.remedy} first`);
  }, 600_000);

  test("a memory leak: the agent acts before the OOM killer, and explains", async () => {
    await sh(g, "paio stop flaky >/dev/null");
    const rows = await until("the agent acting on leaky", async () => {
      const r = await why("leaky");
      return r.some((x) => x.kind === "decision" && x.body.executed === true) ? r : undefined;
    }, 240_000);
    const d = rows.find((x) => x.kind === "decision" && x.body.executed === true)!;
    const inputs = d.body.inputs as { eta_s: number; memory_fraction: number };
    const ooms = await sh(g, "grep oom_kill /sys/fs/cgroup/paio/leaky/memory.events");
    expect(ooms).toMatch(/oom_kill 0/);
    expect(d.body.remedy).toBe("restart");
    expect(inputs.eta_s).toBeGreaterThan(0);
    const text = await sh(g, "paio why leaky");
    expect(text).toMatch(/memory grows steadily .* OOM-killed in about \d+ s/);
    await sh(g, "paio stop leaky >/dev/null");
    console.log(`memory leak: acted at ${(inputs.memory_fraction * 100).toFixed(0)}% of memory.max, predicted OOM in ${inputs.eta_s} s (lead time), by ${(d.body.evidence as { by: string }).by}; OOM kills: 0`);
  }, 300_000);

  test("a CPU hog next to a latency-sensitive unit: the hog is tamed and the health latency recovers", async () => {
    const latency = async () => (await json<{ health: { last?: { latency_ms: number } } }>("paio --json status web")).health.last?.latency_ms ?? 0;
    const sample = async (n: number) => {
      const xs: number[] = [];
      for (let i = 0; i < n; i++) {
        xs.push(await latency());
        await Bun.sleep(1500);
      }
      return xs.sort((a, b) => a - b)[Math.floor(n / 2)]!;
    };
    const before = await sample(5);
    await sh(g, `cat > /var/lib/paio/units/hog.toml <<'UNIT'\n${HOG}UNIT\npaio reload >/dev/null`);
    const underHog: number[] = [];
    const rows = await until("the agent acting on hog", async () => {
      underHog.push(await latency());
      const r = await why("hog");
      return r.some((x) => x.kind === "decision" && x.body.executed === true) ? r : undefined;
    }, 240_000);
    const d = rows.find((x) => x.kind === "decision" && x.body.executed === true)!;
    const during = underHog.sort((a, b) => a - b)[Math.floor(underHog.length / 2)]!;
    await Bun.sleep(8000);
    const after = await sample(5);
    const st = await json<{ limits: { cpu_weight?: number; cpu_max?: string } }>("paio --json status hog");
    expect(["deprioritize", "limit-cpu"]).toContain(d.body.remedy);
    expect(st.limits.cpu_weight === 20 || st.limits.cpu_max !== undefined).toBe(true);
    // Recovered: back within twice the latency it had alone (or 50 ms of it, for tiny figures).
    expect(after).toBeLessThanOrEqual(Math.max(2 * before, before + 50));
    console.log(`CPU hog: web health latency ${before} ms alone, ${during} ms under the hog (median while the agent decided; ${(d.body.inputs as { psi_cpu_some: number }).psi_cpu_some}% CPU pressure), ${after} ms after '${d.body.remedy}' (medians)`);
    await sh(g, "paio stop hog >/dev/null");
  }, 400_000);

  test("a CPU hog outside every unit is contained and explained", async () => {
    await sh(g, "echo $$ > /sys/fs/cgroup/cgroup.procs; sh -c ': outsidehog; while true; do :; done' </dev/null >/dev/null 2>&1 &");
    const inc = await until("an outside-hog incident", async () => {
      const list = await json<{ class: string; summary: string; state: string }[]>("paio --json incidents");
      return list.find((i) => i.class === "outside-hog" && i.state === "resolved");
    }, 180_000);
    expect(inc.summary).toMatch(/belongs to no unit and uses \d+% of a CPU/);
    expect(await sh(g, "paio why")).toMatch(/acted: process \d+ .* I will limit process \d+ to a tenth of a CPU/);
    const pid = (await sh(g, "pgrep outsidehog")).trim();
    expect(await sh(g, `cat /proc/${pid}/cgroup`)).toMatch(/paio-quarantine/);
    await sh(g, `kill -9 ${pid}`);
  }, 240_000);

  test("kill -9 of the agent: units are unaffected, the agent comes back with its knowledge", async () => {
    const before = await json<{ pid: number }>("paio --json status web");
    const agentBefore = await json<{ pid: number }>("paio --json status agent");
    const incidents = await json<{ id: number }[]>("paio --json incidents");
    await sh(g, `kill -9 ${agentBefore.pid}`);
    await until("the agent back, answering", async () => {
      const st = await json<{ pid?: number; state: string }>("paio --json status agent");
      return st.state === "running" && st.pid !== agentBefore.pid && (await g.sh("paio agent")).code === 0 ? true : undefined;
    }, 120_000);
    expect((await json<{ pid: number }>("paio --json status web")).pid).toBe(before.pid);
    // Every incident it knew is still there (new ones may have come since).
    const after = (await json<{ id: number }[]>("paio --json incidents")).map((i) => i.id);
    for (const i of incidents) expect(after).toContain(i.id);
    expect(await sh(g, "paio audit verify")).toMatch(/database integrity: ok\naudit log ok/);
  }, 180_000);

  test("the models load verified; an altered model file is refused, its rule is used, and the reason is logged", async () => {
    const status = await until("the agent's socket", async () => {
      const r = await g.sh("paio agent");
      return r.code === 0 ? r.output : undefined;
    }, 120_000);
    expect(status).toMatch(/model memory-forecast: loaded \(backend cpu/);
    // The device key, made at the agent's first start, alone in a folder only root may open; the models' key comes from the read-only root.
    expect(await sh(g, "stat -c '%a %U %n' /var/lib/paio/agent/keys /var/lib/paio/agent/keys/device.pem; ls -A /var/lib/paio/agent/keys; ls /usr/share/paio/model-keys"))
      .toMatch(/700 root \/var\/lib\/paio\/agent\/keys\n600 root \/var\/lib\/paio\/agent\/keys\/device\.pem\ndevice\.pem\npaio\.pub\s*$/);
    await sh(g, `mkdir -p /run/m && cp /usr/lib/paio/models/* /run/m/
printf 'X' | dd of=/run/m/anomaly.onnx bs=1 seek=100 conv=notrunc 2>/dev/null
mount --bind /run/m /usr/lib/paio/models
paio restart agent >/dev/null`);
    const log = await until("the agent back", async () => {
      const l = await sh(g, "paio logs agent -n 30");
      return /refused; using its rule instead/.test(l) ? l : undefined;
    }, 120_000);
    expect(log).toMatch(/model anomaly: refused; using its rule instead \(\/usr\/lib\/paio\/models\/anomaly\.onnx: sha256 [0-9a-f]+… does not match the manifest's [0-9a-f]+… \(the file was altered\)\)/);
    expect(log).toMatch(/model memory-forecast: loaded/);
    expect(await sh(g, "paio agent")).toMatch(/model anomaly: refused \(.*the file was altered/);
    expect(await sh(g, "paio why")).toMatch(/model anomaly is not used .* its rule answers instead/);
    await sh(g, "umount /usr/lib/paio/models; paio restart agent >/dev/null");
  }, 180_000);
});
