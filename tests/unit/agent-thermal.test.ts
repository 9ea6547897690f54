// Board support: the SoC's temperature and throttling read from a sysfs tree
// of real files (no zones, one, two, garbage); the soc-hot episode opens after
// its window and not before, and closes with hysteresis; the plan lowers the
// CPU limit of units that are not protected, and the agent gives the limits
// back when the SoC has been cool for a while, after a restart too.
import { afterEach, describe, expect, test } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readThermal, socLine, socStatus, socZone, sysfsRoot, throttleOf, type ThermalReading } from "../../agents/monitor/thermal.ts";
import { DEFAULT_HOT_C, DEFAULT_THERMAL, Thermal, thresholdOf, type ThermalPolicy } from "../../agents/analyze/thermal.ts";
import { rankRemedies, stepFor, type PlanContext } from "../../agents/plan/ladder.ts";
import { validateCall } from "../../agents/tools/catalog.ts";
import { DEFAULT_POLICY, parsePolicy, PolicyError } from "../../agents/guard/policy.ts";
import { Agent } from "../../agents/agent/agent.ts";
import { DEFAULT_CONFIG } from "../../agents/agent/config.ts";
import { Knowledge } from "../../agents/knowledge/store.ts";
import type { Collector } from "../../agents/monitor/monitor.ts";
import type { Request, Response, UnitState, UnitStatus } from "../../init/control/protocol.ts";

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "paio-thermal-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface ZoneSpec {
  type?: string;
  temp: string;
  trips?: [type: string, temp: string][];
}

/** A sysfs tree of real files: thermal zones, and optionally CPUs sharing one cpufreq policy (as on a Pi: cpuN/cpufreq -> ../cpufreq/policy0). */
function sysfs(root: string, zones: ZoneSpec[], cpu?: { n: number; max: string; cur: string; limit?: string; governor?: string }): string {
  const thermal = join(root, "class", "thermal");
  mkdirSync(thermal, { recursive: true });
  zones.forEach((z, i) => writeZone(root, i, z));
  if (cpu) {
    const policy = join(root, "devices", "system", "cpu", "cpufreq", "policy0");
    mkdirSync(policy, { recursive: true });
    writeFileSync(join(policy, "cpuinfo_max_freq"), `${cpu.max}\n`);
    writeFileSync(join(policy, "scaling_cur_freq"), `${cpu.cur}\n`);
    writeFileSync(join(policy, "scaling_max_freq"), `${cpu.limit ?? cpu.max}\n`);
    writeFileSync(join(policy, "scaling_governor"), `${cpu.governor ?? "ondemand"}\n`);
    for (let c = 0; c < cpu.n; c++) {
      mkdirSync(join(root, "devices", "system", "cpu", `cpu${c}`), { recursive: true });
      symlinkSync("../cpufreq/policy0", join(root, "devices", "system", "cpu", `cpu${c}`, "cpufreq"));
    }
  }
  return root;
}

function writeZone(root: string, i: number, z: ZoneSpec): void {
  const dir = join(root, "class", "thermal", `thermal_zone${i}`);
  mkdirSync(dir, { recursive: true });
  if (z.type !== undefined) writeFileSync(join(dir, "type"), `${z.type}\n`);
  writeFileSync(join(dir, "temp"), z.temp);
  (z.trips ?? []).forEach(([type, temp], k) => {
    writeFileSync(join(dir, `trip_point_${k}_type`), `${type}\n`);
    writeFileSync(join(dir, `trip_point_${k}_temp`), `${temp}\n`);
  });
}

const setTemp = (root: string, zone: number, milli: number) => writeFileSync(join(root, "class", "thermal", `thermal_zone${zone}`, "temp"), `${milli}\n`);

describe("reading the kernel's thermal zones", () => {
  test("PAIO_SYSFS_ROOT moves the root; the default is /sys", () => {
    expect(sysfsRoot({})).toBe("/sys");
    expect(sysfsRoot({ PAIO_SYSFS_ROOT: "/tmp/fake" })).toBe("/tmp/fake");
  });

  test("no zones (a QEMU guest): no thermal sensors, not a failure; a root that does not exist is the same", () => {
    const empty = sysfs(tmp(), []);
    for (const root of [empty, join(empty, "nowhere")]) {
      const r = readThermal(root);
      expect(r).toEqual({ zones: [], cpufreq: [], cooling: [], ignored: [] });
      expect(socLine(r, throttleOf(r))).toBe("no thermal sensors");
      expect(socStatus(r, throttleOf(r))).toMatchObject({ sensors: 0, text: "no thermal sensors" });
    }
  });

  test("one zone, as on a Raspberry Pi 4: the SoC's temperature, its trip point, four CPUs sharing one frequency policy", () => {
    const root = sysfs(tmp(), [{ type: "cpu-thermal", temp: "54321\n", trips: [["critical", "90000"]] }], { n: 4, max: "1500000", cur: "1500000" });
    const r = readThermal(root);
    expect(r.zones).toEqual([{ name: "thermal_zone0", type: "cpu-thermal", tempC: 54.321, trips: [{ index: 0, type: "critical", tempC: 90 }] }]);
    expect(r.cpufreq).toEqual([{ cpus: "cpu0-3", maxKHz: 1_500_000, curKHz: 1_500_000, limitKHz: 1_500_000, governor: "ondemand" }]);
    expect(r.ignored).toEqual([]);
    expect(socLine(r, throttleOf(r))).toBe("SoC 54.3 °C (cpu-thermal, critical at 90 °C); not throttled (cpu0-3 at 1500 of 1500 MHz)");
    expect(socStatus(r, throttleOf(r))).toMatchObject({ sensors: 1, temperature_c: 54.3, zone: "cpu-thermal", throttled: false, frequency_mhz: 1500, max_frequency_mhz: 1500 });
  });

  test("two zones: the SoC's zone is the one named for the CPU package, even when another is hotter", () => {
    const root = sysfs(tmp(), [{ type: "acpitz", temp: "71000" }, { type: "x86_pkg_temp", temp: "61000", trips: [["passive", "95000"], ["critical", "105000"]] }]);
    const r = readThermal(root);
    expect(r.zones.map((z) => z.type)).toEqual(["acpitz", "x86_pkg_temp"]);
    expect(socZone(r)?.type).toBe("x86_pkg_temp");
    // Without a zone named for the CPU, the hottest counts.
    const other = readThermal(sysfs(tmp(), [{ type: "acpitz", temp: "41000" }, { type: "iwlwifi_1", temp: "47000" }]));
    expect(socZone(other)?.type).toBe("iwlwifi_1");
  });

  test("garbage is left out with its reason, never a crash", () => {
    const root = sysfs(tmp(), [
      { type: "cpu-thermal", temp: "abc\n" },
      { type: "gpu-thermal", temp: "" },
      { type: "soc-thermal", temp: "999999999" },
      { temp: "48000", trips: [["passive", "x"], ["critical", "0"], ["hot", "-273000"]] }, // no type file: named after its directory
      { type: "\u001b[2Jcpu\u0000", temp: "50000" },
    ]);
    // A temp that cannot be read at all (a directory in its place).
    mkdirSync(join(root, "class", "thermal", "thermal_zone5"));
    mkdirSync(join(root, "class", "thermal", "thermal_zone5", "temp"));
    // A zone directory that is only a file; a cooling device with garbage.
    writeFileSync(join(root, "class", "thermal", "thermal_zone6"), "");
    mkdirSync(join(root, "class", "thermal", "cooling_device0"));
    writeFileSync(join(root, "class", "thermal", "cooling_device0", "type"), "cpufreq-cpu0\n");
    writeFileSync(join(root, "class", "thermal", "cooling_device0", "cur_state"), "lots\n");
    writeFileSync(join(root, "class", "thermal", "cooling_device0", "max_state"), "3\n");
    // A CPU whose maximum frequency is garbage.
    mkdirSync(join(root, "devices", "system", "cpu", "cpu0", "cpufreq"), { recursive: true });
    writeFileSync(join(root, "devices", "system", "cpu", "cpu0", "cpufreq", "cpuinfo_max_freq"), "fast\n");
    const r = readThermal(root);
    expect(r.zones.map((z) => [z.name, z.type, z.tempC, z.trips.length])).toEqual([
      ["thermal_zone3", "thermal_zone3", 48, 0],
      ["thermal_zone4", "?[2Jcpu?", 50, 0],
    ]);
    const reasons = Object.fromEntries(r.ignored.map((i) => [i.path.slice(root.length + 1), i.reason]));
    expect(reasons).toEqual({
      "class/thermal/thermal_zone0/temp": "'abc' is not a temperature in millidegrees",
      "class/thermal/thermal_zone1/temp": "'' is not a temperature in millidegrees",
      "class/thermal/thermal_zone2/temp": "999999.999 °C is not plausible (outside -40..150 °C)",
      "class/thermal/thermal_zone3/trip_point_0_temp": "'x' is not a temperature in millidegrees",
      "class/thermal/thermal_zone3/trip_point_1_temp": "0 °C is not a usable trip point",
      "class/thermal/thermal_zone3/trip_point_2_temp": "-273 °C is not plausible (outside -40..150 °C)",
      "class/thermal/thermal_zone5/temp": "cannot be read (EISDIR)",
      "class/thermal/thermal_zone6/temp": "cannot be read (ENOTDIR)",
      "class/thermal/cooling_device0": "cur_state 'lots' or max_state '3' is not a number",
      "devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq": "'fast' is not a frequency in kHz",
    });
    expect(socStatus(r, throttleOf(r)).ignored).toHaveLength(10);
  });

  test("throttling: a frequency under the maximum counts only on a busy CPU or under the performance governor; a kernel cooling device always", () => {
    const slow = readThermal(sysfs(tmp(), [{ type: "cpu-thermal", temp: "70000" }], { n: 4, max: "1500000", cur: "600000" }));
    expect(throttleOf(slow).throttled).toBeUndefined(); // idle or capped? cannot tell without the CPU's use
    expect(throttleOf(slow, 10)).toEqual({ throttled: false, reason: "cpu0-3 at 600 of 1500 MHz, which is normal for a CPU that is not busy" });
    expect(throttleOf(slow, 98)).toEqual({ throttled: true, reason: "frequency capped: cpu0-3 at 600 of 1500 MHz while the CPU is 98% busy" });
    const perf = readThermal(sysfs(tmp(), [{ type: "cpu-thermal", temp: "70000" }], { n: 1, max: "1200000", cur: "600000", governor: "performance" }));
    expect(throttleOf(perf, 5)).toEqual({ throttled: true, reason: "frequency capped: cpu0 at 600 of 1200 MHz under the performance governor" });
    const root = sysfs(tmp(), [{ type: "cpu-thermal", temp: "70000" }], { n: 4, max: "1500000", cur: "1500000" });
    mkdirSync(join(root, "class", "thermal", "cooling_device0"));
    writeFileSync(join(root, "class", "thermal", "cooling_device0", "type"), "cpufreq-cpu0\n");
    writeFileSync(join(root, "class", "thermal", "cooling_device0", "cur_state"), "2\n");
    writeFileSync(join(root, "class", "thermal", "cooling_device0", "max_state"), "4\n");
    expect(throttleOf(readThermal(root), 0)).toEqual({ throttled: true, reason: "the kernel's cooling device cpufreq-cpu0 is at state 2 of 4" });
  });
});

const zone = (tempC: number, trips: [string, number][] = []) => ({ name: "thermal_zone0", type: "cpu-thermal", tempC, trips: trips.map(([type, t], index) => ({ index, type, tempC: t })) });
const reading = (tempC: number, trips: [string, number][] = []): ThermalReading => ({ zones: [zone(tempC, trips)], cpufreq: [], cooling: [], ignored: [] });

describe("the soc-hot episode", () => {
  test("the threshold: the policy's hot_c, else a passive trip point minus the margin, else 80 °C (under a lower critical trip point)", () => {
    expect(thresholdOf(zone(50), DEFAULT_THERMAL)).toEqual({ hotC: DEFAULT_HOT_C, from: "the default 80 °C" });
    expect(thresholdOf(zone(50, [["passive", 85], ["critical", 90]]), DEFAULT_THERMAL)).toEqual({ hotC: 80, from: "cpu-thermal's passive trip point 85 °C minus 5 °C" });
    expect(thresholdOf(zone(50, [["critical", 75]]), DEFAULT_THERMAL)).toEqual({ hotC: 70, from: "cpu-thermal's critical trip point 75 °C minus 5 °C" });
    expect(thresholdOf(zone(50, [["critical", 110]]), DEFAULT_THERMAL).hotC).toBe(80);
    expect(thresholdOf(zone(50, [["passive", 85]]), { ...DEFAULT_THERMAL, hotC: 70 })).toEqual({ hotC: 70, from: "the policy's thermal.hot_c" });
  });

  test("opens after the sustained window and not before; a dip under the threshold starts the window again", () => {
    const th = new Thermal(DEFAULT_THERMAL); // 80 °C for 30 s
    const seen: number[] = [];
    for (let s = 0; s <= 80; s++) {
      const c = s === 20 ? 79.9 : 82; // one cool reading at 20 s
      th.observe(reading(c), s * 1000);
      for (const f of th.findings(s * 1000)) {
        seen.push(s);
        expect(f).toMatchObject({ class: "soc-hot", unit: null, detail: "", summary: "the SoC is at 82.0 °C (cpu-thermal), over its 80 °C threshold, for 30 s" });
        expect(f.inputs).toMatchObject({ temperature_c: 82, threshold_c: 80, threshold_from: "the default 80 °C", hot_for_s: 30 });
        expect(f.evidence.rule).toMatch(/for 30 s$/);
      }
    }
    // Hot again from 21 s: reported at 51 s, once for the whole episode.
    expect(seen).toEqual([51]);
    expect(th.open).toBe(true);
  });

  test("closes with hysteresis: under the threshold is not enough; cool by the margin for cool_for, without a bounce", () => {
    const p: ThermalPolicy = { ...DEFAULT_THERMAL, hotForMs: 5000, coolForMs: 60_000 };
    const th = new Thermal(p);
    for (let s = 0; s <= 5; s++) th.observe(reading(85), s * 1000);
    expect(th.findings(5000)).toHaveLength(1);
    // 77 °C: under 80 but not under 75: neither hot nor cool, for ten minutes.
    for (let s = 6; s <= 600; s++) th.observe(reading(77), s * 1000);
    expect(th.takeRecoveries()).toEqual([]);
    expect(th.state()).toMatchObject({ state: "cooling", temperature_c: 77, threshold_c: 80 });
    // 74 °C for 50 s, a bounce to 76 °C, then 74 °C again: the minute counts from after the bounce.
    for (let s = 601; s <= 650; s++) th.observe(reading(74), s * 1000);
    th.observe(reading(76), 651_000);
    for (let s = 652; s < 712; s++) th.observe(reading(74), s * 1000);
    expect(th.takeRecoveries()).toEqual([]);
    th.observe(reading(74), 712_000);
    const r = th.takeRecoveries();
    expect(r).toEqual([{ since: 0, until: 712_000, peakC: 85, what: "74.0 °C (cpu-thermal), 6.0 °C under its 80 °C threshold" }]);
    expect(th.open).toBe(false);
    expect(th.findings(712_000)).toEqual([]);
  });

  test("throttling alone is an episode (unless the policy says throttling = false); no sensors is no episode", () => {
    const throttled: ThermalReading = { ...reading(60), cooling: [{ name: "cooling_device0", type: "cpufreq-cpu0", cur: 1, max: 4 }] };
    const th = new Thermal({ ...DEFAULT_THERMAL, hotForMs: 2000 });
    for (let s = 0; s <= 2; s++) th.observe(throttled, s * 1000);
    expect(th.findings(2000)[0]!.summary).toBe("the SoC is at 60.0 °C (cpu-thermal) and the CPU is throttled (the kernel's cooling device cpufreq-cpu0 is at state 1 of 4), for 2 s");
    const off = new Thermal({ ...DEFAULT_THERMAL, hotForMs: 2000, throttling: false });
    for (let s = 0; s <= 5; s++) off.observe(throttled, s * 1000);
    expect(off.findings(5000)).toEqual([]);
    const none = new Thermal({ ...DEFAULT_THERMAL, hotForMs: 0 });
    none.observe({ zones: [], cpufreq: [], cooling: [], ignored: [] }, 0);
    none.observe(undefined, 1000);
    expect(none.findings(1000)).toEqual([]);
    expect(none.state()).toEqual({ state: "unknown" });
    expect(none.describe()).toBe("no thermal sensors");
  });
});

const status = (name: string, state: UnitState, cpu_max?: string): UnitStatus => ({
  name, description: "", state, reason: "", since: 0, restarts: 0, ports: [], frozen: false, exec: [], restart: "always", latency_sensitive: false, limits: { cpu_max },
});

describe("the soc-hot ladder", () => {
  const finding = (() => {
    const th = new Thermal({ ...DEFAULT_THERMAL, hotForMs: 0 });
    th.observe(reading(90), 0);
    return th.findings(0)[0]!;
  })();
  const ctx: PlanContext = {
    units: [status("agent", "running"), status("console", "running"), status("demo", "running"), status("web", "running", "80%"), status("slow", "running", "20%"), status("idle", "inactive"), status("later", "starting")],
    protectedUnits: DEFAULT_POLICY.protectedUnits,
    cpuCapPercent: 50,
    coolForMs: 120_000,
  };

  test("lower the CPU limit, lower it further, then tell the person", () => {
    expect(rankRemedies("soc-hot", []).map((r) => r.remedy)).toEqual(["cap-cpu", "cap-cpu-hard", "notify"]);
  });

  test("only running units outside protected_units whose limit is higher get the lower one", () => {
    const one = stepFor("cap-cpu", finding, undefined, ctx);
    if ("skip" in one) throw new Error(one.skip);
    expect(one.calls).toEqual([
      { tool: "unit.limit", args: { unit: "demo", cpu_percent: 50 } },
      { tool: "unit.limit", args: { unit: "web", cpu_percent: 50 } },
      { tool: "unit.limit", args: { unit: "later", cpu_percent: 50 } },
    ]);
    expect(one.why).toBe("a lower CPU limit (cpu.max 50% of one core, was: demo no limit, web 80%, later no limit) makes the units do less work at once, so the SoC draws less power and heats less; protected units (agent, console) are left alone; the limits go back when the SoC has been cool for 120 s");
    for (const c of one.calls) expect(validateCall(c.tool, c.args, "agent").ok).toBe(true);
    const two = stepFor("cap-cpu-hard", finding, undefined, ctx);
    expect("calls" in two && two.calls.map((c) => [c.args.unit, c.args.cpu_percent])).toEqual([["demo", 25], ["web", 25], ["later", 25]]);
    const notify = stepFor("notify", finding, undefined, ctx);
    expect("calls" in notify && notify.calls).toEqual([]);
    expect("why" in notify && notify.why).toMatch(/heatsink, a fan or better airflow/);
  });

  test("nothing to lower is a skip with the reason", () => {
    expect(stepFor("cap-cpu", finding, undefined, { ...ctx, units: [status("agent", "running"), status("slow", "running", "20%")] })).toEqual({ skip: "every running unit outside protected_units already has a CPU limit of 50% of one core or less" });
    expect(stepFor("cap-cpu", finding, undefined, { ...ctx, units: [status("agent", "running"), status("console", "running")] })).toEqual({ skip: "no unit outside protected_units is running" });
  });

  test("giving a limit back is the agent's own tool: a person cannot call it; no limit or a fraction of a core", () => {
    expect(validateCall("unit.restore-cpu", { unit: "demo" }, "agent").ok).toBe(true);
    expect(validateCall("unit.restore-cpu", { unit: "demo", cpu_percent: 12.5 }, "agent").ok).toBe(true);
    expect(validateCall("unit.restore-cpu", { unit: "demo" }, "person").ok).toBe(false);
  });
});

describe("the policy's [thermal] table", () => {
  const FILE = "/var/lib/paio/policy.toml";
  test("every field parses; absent fields keep their defaults", () => {
    const p = parsePolicy(`[thermal]\nhot_c = 75\ntrip_margin_c = 3\nhot_for = "45s"\ncool_margin_c = 8\ncool_for = "5m"\ncpu_cap_percent = 40\nthrottling = false\n`, FILE);
    expect(p.thermal).toEqual({ hotC: 75, tripMarginC: 3, hotForMs: 45_000, coolMarginC: 8, coolForMs: 300_000, cpuCapPercent: 40, throttling: false });
    expect(parsePolicy(`mode = "auto"\n`, FILE).thermal).toEqual(DEFAULT_THERMAL);
  });

  test.each([
    ['[thermal]\nhot_c = "hot"\n', /^\/var\/lib\/paio\/policy\.toml line 2 field 'thermal\.hot_c': must be a number of degrees Celsius from 30 to 125/],
    ["[thermal]\nhot_c = 400\n", /line 2 field 'thermal\.hot_c': must be a number of degrees Celsius from 30 to 125/],
    ['[thermal]\ntrip_margin_c = -2\n', /line 2 field 'thermal\.trip_margin_c': must be a number of degrees Celsius from 0 to 50/],
    ['[thermal]\nhot_for = "soon"\n', /line 2 field 'thermal\.hot_for': must be a duration from 1s to 24h/],
    ['[thermal]\ncool_for = 30\n', /line 2 field 'thermal\.cool_for': must be a duration/],
    ["[thermal]\ncpu_cap_percent = 1\n", /line 2 field 'thermal\.cpu_cap_percent': must be a whole number of percent of one core from 2 to 100000/],
    ["[thermal]\ncpu_cap_percent = 33.3\n", /field 'thermal\.cpu_cap_percent'/],
    ['[thermal]\nthrottling = "yes"\n', /line 2 field 'thermal\.throttling': must be true or false/],
    ["[thermal]\nfan = true\n", /field 'thermal\.fan': unknown field; known fields in \[thermal\]: hot_c, trip_margin_c, hot_for, cool_margin_c, cool_for, cpu_cap_percent, throttling/],
    ['thermal = "hot"\n', /line 1 field 'thermal': must be a table/],
  ])("%j is refused naming the file, line and field", (text, re) => {
    expect(() => parsePolicy(text, FILE)).toThrow(PolicyError);
    expect(() => parsePolicy(text, FILE)).toThrow(re);
  });
});

/** A supervisor with units and limits, as the agent sees it through the control socket; it keeps every request. */
function supervisor(units: UnitStatus[]) {
  const byName = new Map(units.map((u) => [u.name, u]));
  const requests: Request[] = [];
  return {
    requests,
    setCpu(unit: string, cpu_max: string | undefined) {
      byName.get(unit)!.limits.cpu_max = cpu_max;
    },
    async request(req: Request): Promise<Response> {
      requests.push(req);
      if (req.op === "list") return { ok: true, result: [...byName.values()] };
      if (req.op === "set-limits") {
        const u = byName.get(req.unit);
        if (!u) return { ok: false, error: { code: "no-such-unit", message: `no unit named '${req.unit}'` } };
        if (req.limits.cpu_max !== undefined) u.limits.cpu_max = req.limits.cpu_max ?? undefined;
        return { ok: true, result: u.limits };
      }
      return { ok: true, result: {} };
    },
    async list() {
      return [...byName.values()].map((u) => ({ ...u }));
    },
    async status(unit: string) {
      const u = byName.get(unit);
      return u && { ...u, limits: { ...u.limits } };
    },
  };
}

function agentOn(root: string, k: Knowledge, sup: ReturnType<typeof supervisor>, thermal: Partial<ThermalPolicy>, config: Partial<typeof DEFAULT_CONFIG> = {}): Agent {
  const steady: Collector[] = [{ name: "steady", minPeriodMs: 0, costMs: 0, lastRun: 0, last: {}, run: async () => ({ "sys.cpu_pct": 20, "sys.mem_pct": 30 }) }];
  return new Agent({
    supervisor: sup,
    knowledge: k,
    policy: { ...DEFAULT_POLICY, thermal: { ...DEFAULT_THERMAL, ...thermal } },
    config: { ...DEFAULT_CONFIG, retrainEveryMs: 0, cooldownMs: 0, ...config },
    detector: { outsideScanMs: Infinity },
    cgroupRoot: join(root, "no-cgroup"),
    monitor: { collectors: steady, sysfsRoot: root, thermalPeriodMs: 0 },
  });
}

const cpuRequests = (sup: ReturnType<typeof supervisor>) =>
  sup.requests.filter((r): r is Extract<Request, { op: "set-limits" }> => r.op === "set-limits").map((r) => [r.unit, r.limits.cpu_max]);

describe("the agent and a hot SoC", () => {
  const units = () => [status("agent", "running"), status("console", "running"), status("demo", "running"), status("web", "running", "80%"), status("slow", "running", "20%"), status("idle", "inactive")];

  test("lowers the limits of units that are not protected, lowers them further while hot, gives the first ones back when cool, and explains each step", async () => {
    const root = sysfs(tmp(), [{ type: "cpu-thermal", temp: "85000", trips: [["critical", "90000"]] }], { n: 4, max: "1500000", cur: "1500000" });
    const k = new Knowledge(join(tmp(), "agent", "knowledge.db"));
    const sup = supervisor(units());
    const agent = agentOn(root, k, sup, { hotForMs: 5000, coolForMs: 10_000 }, { outcomeWindowMs: 10_000 });
    const t0 = Date.now();
    for (let s = 0; s <= 4; s++) await agent.tick(t0 + s * 1000);
    expect(k.incidents()).toEqual([]); // hot for 4 s: not yet
    await agent.tick(t0 + 5000);
    const [incident] = k.incidents();
    expect(incident).toMatchObject({ class: "soc-hot", unit: null, signature: "soc-hot:-", state: "healing" });
    expect(cpuRequests(sup)).toEqual([["demo", "50%"], ["web", "50%"]]);
    expect(agent.status().soc).toMatchObject({ state: "hot", temperature_c: 85, threshold_c: 80, capped_units: ["demo", "web"] });
    // Still hot when the outcome window ends: the next rung.
    for (let s = 6; s <= 15; s++) await agent.tick(t0 + s * 1000);
    expect(cpuRequests(sup)).toEqual([["demo", "50%"], ["web", "50%"], ["demo", "25%"], ["web", "25%"]]);
    // It cools: 78 °C is under 80 but not cool; 70 °C for 10 s is.
    setTemp(root, 0, 78_000);
    for (let s = 16; s <= 20; s++) await agent.tick(t0 + s * 1000);
    setTemp(root, 0, 70_000);
    for (let s = 21; s < 31; s++) await agent.tick(t0 + s * 1000);
    expect(k.incidents()[0]!.state).toBe("healing");
    await agent.tick(t0 + 31_000);
    expect(k.incidents()[0]).toMatchObject({ id: incident!.id, state: "resolved" });
    // The limits from before the first rung come back: none for demo, 80% for web. Protected and stopped units were never touched.
    expect(cpuRequests(sup).slice(4)).toEqual([["demo", null], ["web", "80%"]]);
    expect(sup.requests.some((r) => r.op === "set-limits" && ["agent", "console", "slow", "idle"].includes(r.unit))).toBe(false);
    expect(agent.status().soc).toMatchObject({ state: "ok", capped_units: [] });
    // The remedy that was being judged when it cooled is credited; the one before is not.
    expect(k.remedyStats("soc-hot:-")).toEqual(expect.arrayContaining([{ remedy: "cap-cpu", attempts: 1, successes: 0, contained: 0 }, { remedy: "cap-cpu-hard", attempts: 1, successes: 1, contained: 0 }]));
    // Every step is in the audit log, in words.
    const told = k.audit.recent(20).reverse().map((r) => String((r.body as { justification?: string; summary?: string }).justification ?? (r.body as { summary?: string }).summary));
    expect(told).toEqual([
      "the SoC is at 85.0 °C (cpu-thermal), over its 80 °C threshold, for 5 s",
      expect.stringMatching(/^the SoC is at 85\.0 °C .*\. I will lower the CPU limit of the units that are not protected \(remedy 1 of 3\) because a lower CPU limit \(cpu\.max 50% of one core, was: demo no limit, web 80%\) .*protected units \(agent, console\) are left alone; the limits go back when the SoC has been cool for 10 s\. Policy: risk 'medium' is in agent\.alone; autonomy mode auto\.$/),
      expect.stringMatching(/^lower the CPU limit of the units that are not protected did not work: the SoC is still hot 10 s after the remedy: 85\.0 °C \(cpu-thermal\), 5\.0 °C over its 80 °C threshold; not throttled$/),
      expect.stringMatching(/I will lower the CPU limit of the units that are not protected further \(remedy 2 of 3\) because a lower CPU limit \(cpu\.max 25% of one core, was: demo 50%, web 50%\)/),
      "lower the CPU limit of the units that are not protected further worked: the SoC has been cool for 10 s after 31 s of trouble (peak 85.0 °C): 70.0 °C (cpu-thermal), 10.0 °C under its 80 °C threshold; not throttled",
      "the SoC has been cool for 10 s after 31 s of trouble (peak 85.0 °C): 70.0 °C (cpu-thermal), 10.0 °C under its 80 °C threshold; not throttled, so I gave back the CPU limits I had lowered for the heat: gave demo back no CPU limit; gave web back its CPU limit of 80% of one core.",
    ]);
    expect(k.audit.verify().ok).toBe(true);
    k.close();
  });

  test("after a restart of the agent the limits still go back once cool; a limit a person changed meanwhile stays", async () => {
    const root = sysfs(tmp(), [{ type: "cpu-thermal", temp: "86000" }]);
    const path = join(tmp(), "agent", "knowledge.db");
    let k = new Knowledge(path);
    const sup = supervisor(units());
    let agent = agentOn(root, k, sup, { hotForMs: 2000, coolForMs: 5000 });
    const t0 = Date.now();
    for (let s = 0; s <= 2; s++) await agent.tick(t0 + s * 1000);
    expect(cpuRequests(sup)).toEqual([["demo", "50%"], ["web", "50%"]]);
    // The agent is restarted while the SoC is still hot; a person sets web to 70% meanwhile.
    k.close();
    sup.setCpu("web", "70%");
    k = new Knowledge(path);
    agent = agentOn(root, k, sup, { hotForMs: 2000, coolForMs: 5000 });
    expect(agent.status().soc?.capped_units).toEqual(["demo", "web"]);
    setTemp(root, 0, 60_000);
    for (let s = 3; s < 8; s++) await agent.tick(t0 + s * 1000);
    expect(cpuRequests(sup)).toHaveLength(2);
    await agent.tick(t0 + 8000);
    expect(cpuRequests(sup)).toEqual([["demo", "50%"], ["web", "50%"], ["demo", null]]);
    const last = k.audit.recent(1)[0]!;
    expect(last.body).toMatchObject({ kind: "thermal-restore", executed: true });
    expect(String(last.body.justification)).toMatch(/gave demo back no CPU limit\. Not given back: web's limit was changed meanwhile \(it is 70%, I had set 50%\), so it stays\.$/);
    expect(agent.status().soc?.capped_units).toEqual([]);
    k.close();
  });

  test("in advise mode nothing is changed: the decision is a proposal, and the incident resolves when the SoC cools", async () => {
    const root = sysfs(tmp(), [{ type: "cpu-thermal", temp: "90000" }]);
    const k = new Knowledge(join(tmp(), "agent", "knowledge.db"));
    const sup = supervisor(units());
    const steady: Collector[] = [{ name: "steady", minPeriodMs: 0, costMs: 0, lastRun: 0, last: {}, run: async () => ({ "sys.cpu_pct": 20 }) }];
    const agent = new Agent({
      supervisor: sup, knowledge: k, policy: { ...DEFAULT_POLICY, mode: "advise", thermal: { ...DEFAULT_THERMAL, hotForMs: 1000, coolForMs: 2000 } },
      config: { ...DEFAULT_CONFIG, retrainEveryMs: 0 }, detector: { outsideScanMs: Infinity }, cgroupRoot: join(root, "no-cgroup"),
      monitor: { collectors: steady, sysfsRoot: root, thermalPeriodMs: 0 },
    });
    const t0 = Date.now();
    for (let s = 0; s <= 1; s++) await agent.tick(t0 + s * 1000);
    expect(k.incidents()[0]!.state).toBe("proposed");
    setTemp(root, 0, 50_000);
    for (let s = 2; s <= 4; s++) await agent.tick(t0 + s * 1000);
    expect(k.incidents()[0]!.state).toBe("resolved");
    expect(cpuRequests(sup)).toEqual([]);
    k.close();
  });

  test("a machine without thermal zones: no incident, and the status says so", async () => {
    const root = sysfs(tmp(), []);
    const k = new Knowledge(join(tmp(), "agent", "knowledge.db"));
    const agent = agentOn(root, k, supervisor(units()), { hotForMs: 1000 });
    for (let s = 0; s < 5; s++) await agent.tick(Date.now() + s * 1000);
    expect(k.incidents()).toEqual([]);
    expect(agent.status().soc).toEqual({ state: "unknown", text: "no thermal sensors", capped_units: [] });
    k.close();
  });
});
