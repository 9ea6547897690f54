// `bin/paio ask --dry-run --json` on the host, as a user runs it: one JSON
// object with the intent, resolved slots, confidence, confirmation, plan and
// reply; nothing executed, no device needed.
import { beforeAll, describe, expect, test } from "vitest";
import { join } from "node:path";

const REPO = join(import.meta.dirname, "../..");

beforeAll(() => {
  const r = Bun.spawnSync([process.execPath, join(REPO, "agents/models/build.ts")], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
}, 180_000);

function ask(text: string, units = "camera,nginx,mqtt-bridge"): { code: number; json: Record<string, unknown>; stderr: string } {
  const r = Bun.spawnSync([join(REPO, "bin/paio"), "ask", "--dry-run", "--json", "--units", units, text], { stdout: "pipe", stderr: "pipe", env: { ...process.env, PAIO_CONTROL_SOCKET: "/nonexistent/control.sock" } });
  const out = r.stdout.toString().trim();
  expect(out.split("\n")).toHaveLength(1);
  return { code: r.exitCode ?? -1, json: JSON.parse(out), stderr: r.stderr.toString() };
}

describe("paio ask --dry-run --json", () => {
  test('"restart camra" resolves the typo against --units', () => {
    const { code, json } = ask("restart camra");
    expect(code).toBe(0);
    expect(json).toMatchObject({ intent: "unit.restart", slots: { unit: "camera" }, needs_confirmation: false, plan: [{ tool: "unit.restart", args: { unit: "camera" }, effect: "change" }] });
    expect(json.confidence).toBeGreaterThan(0.6);
    expect(json.confidence).toBeLessThanOrEqual(1);
    expect(json.reply).toBe("Restarting camera.");
  });

  test("amounts are normalised: half a CPU, 1 GB, two cores", () => {
    expect(ask("give mqtt-bridge at most half a cpu").json).toMatchObject({ intent: "unit.limit", slots: { unit: "mqtt-bridge", cpu_percent: 50 } });
    expect(ask("limit nginx to 1 GB").json).toMatchObject({ intent: "unit.limit", slots: { unit: "nginx", memory_mb: 1024 } });
    expect(ask("limit camera to two cores").json).toMatchObject({ intent: "unit.limit", slots: { unit: "camera", cpu_percent: 200 } });
  });

  test("dangerous requests need confirmation; nonsense is out of scope and plans nothing", () => {
    expect(ask("power off").json).toMatchObject({ intent: "power.poweroff", needs_confirmation: true });
    expect(ask("kill process 4242").json).toMatchObject({ intent: "process.kill", slots: { pid: 4242 }, needs_confirmation: true });
    const none = ask("qzxv blorp fnord").json;
    expect(none).toMatchObject({ intent: "none", plan: [] });
    expect(String(none.reply)).toMatch(/did nothing/);
  });

  test("a missing or ambiguous unit is asked about, never guessed", () => {
    const missing = ask("show me the logs").json;
    expect(missing.plan).toEqual([]);
    expect(String(missing.reply)).toMatch(/Which unit\? The units are: camera, nginx, mqtt-bridge/);
    const ambiguous = ask("restart cam", "cam1,cam2").json;
    expect(ambiguous.plan).toEqual([]);
  });

  test("without models it says how to get them", () => {
    const r = Bun.spawnSync([join(REPO, "bin/paio"), "ask", "--dry-run", "--units", "a", "restart a"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, PAIO_MODELS_DIR: "/nonexistent" } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr.toString()).toMatch(/language model cannot be used: no \/nonexistent\/manifest\.json \(run 'make models'\)/);
  });
});
