import { describe, expect, test } from "vitest";
import { parseUnitFile } from "../../init/supervisor/unit-file.ts";
import { fieldLine, suggest, tomlErrorLine } from "../../lib/config/toml.ts";
import { parseCpuMax, parseDuration, parseSize } from "../../lib/config/measure.ts";

const P = "/etc/paio/units/cam.toml";

function error(text: string, path = P): string {
  const r = parseUnitFile(text, path);
  if (r.ok) throw new Error("expected an error");
  return r.error;
}

const FULL = `description = "Camera capture"
exec = ["/usr/bin/camera", "--fps", "30"]
env = { LOG_LEVEL = "info" }
user = "camera"
after = ["network"]
requires = ["mqtt-bridge"]
restart = "on-failure"
restart_delay = "200ms"
restart_delay_max = "30s"
start_limit = { burst = 5, interval = "60s" }
latency_sensitive = true
latency_nice = -10
ports = [8080, "5683/udp"]
[health]
type = "http"
target = "http://127.0.0.1:8080/healthz"
interval = "5s"
timeout = "2s"
retries = 3
grace = "10s"
[limits]
cpu_weight = 100
cpu_max = "50%"
memory_max = "128M"
pids_max = 256
[stop]
signal = "SIGTERM"
timeout = "10s"
`;

describe("unit files", () => {
  test("the documented example parses into every field", () => {
    const r = parseUnitFile(FULL, P);
    expect(r).toEqual({
      ok: true,
      unit: {
        name: "cam", path: P, description: "Camera capture", exec: ["/usr/bin/camera", "--fps", "30"], env: { LOG_LEVEL: "info" },
        user: "camera", after: ["network"], requires: ["mqtt-bridge"], restart: "on-failure", restartDelayMs: 200, restartDelayMaxMs: 30_000,
        startLimit: { burst: 5, intervalMs: 60_000 },
        health: { type: "http", target: "http://127.0.0.1:8080/healthz", intervalMs: 5000, timeoutMs: 2000, retries: 3, graceMs: 10_000 },
        limits: { cpuWeight: 100, cpuMaxUs: 50_000, memoryMax: 128 * 1024 * 1024, pidsMax: 256 },
        stop: { signal: "SIGTERM", timeoutMs: 10_000 },
        latencySensitive: true,
        latencyNice: -10,
        ports: [{ port: 8080, proto: "tcp" }, { port: 5683, proto: "udp" }],
      },
    });
  });

  test("a minimal file gets the defaults", () => {
    const r = parseUnitFile('exec = ["/bin/true"]\n', P);
    expect(r.ok && r.unit).toMatchObject({ restart: "on-failure", restartDelayMs: 200, restartDelayMaxMs: 30_000, startLimit: { burst: 5, intervalMs: 60_000 }, limits: {}, stop: { signal: "SIGTERM", timeoutMs: 10_000 } });
    expect(r.ok && r.unit.health).toBeUndefined();
  });

  test("invalid TOML names the file and the line", () => {
    expect(error('description = "x"\nexec = ["/bin/true"]\nrestart = = "always"\n')).toMatch(/^\/etc\/paio\/units\/cam\.toml line 3: not valid TOML/);
    expect(error('exec = ["/bin/true"]\nrestart = "always\n')).toMatch(/ line 2: /);
    expect(error("= 1\n")).toMatch(/ line 1: /);
  });

  test("a multi-line array does not hide the line of a later error", () => {
    const text = 'exec = [\n  "/bin/sh",\n  "-c",\n  "true",\n]\nrestart "always"\n';
    expect(tomlErrorLine(text)).toBe(6);
    expect(error(text)).toMatch(/ line 6: /);
  });

  test("an array that is never closed is reported where it starts", () => {
    expect(error('description = "ok"\nexec = ["/bin/true",\nrestart = "never"\n')).toMatch(/ line 2: /);
  });

  test("an unknown field is refused with its line, a suggestion and the known fields", () => {
    const e = error('exec = ["/bin/true"]\nrestrat = "always"\n');
    expect(e).toContain("line 2 field 'restrat': unknown field (did you mean 'restart'?)");
    expect(e).toContain("known fields: description, exec");
    expect(error('exec = ["/bin/true"]\n[health]\ntype = "tcp"\ntarget = 80\ntimout = "1s"\n')).toContain("line 5 field 'health.timout': unknown field (did you mean 'health.timeout'?)");
    expect(suggest("zzzzzz", ["exec", "restart"])).toBeUndefined();
  });

  test("wrong types and values name the field, its line and what is expected", () => {
    expect(error('exec = "/bin/true"\n')).toContain("line 1 field 'exec': expected an array of strings");
    expect(error('exec = ["/bin/true"]\nrestart = "sometimes"\n')).toContain(`line 2 field 'restart': expected one of "always", "on-failure", "never", got "sometimes"`);
    expect(error('exec = ["/bin/true"]\ndescription = 5\n')).toContain("field 'description': expected a string");
    expect(error('exec = ["/bin/true"]\nenv = { A = 1 }\n')).toContain("field 'env.A': expected a string");
    expect(error('exec = ["/bin/true"]\nrestart_delay = "soon"\n')).toContain(`field 'restart_delay': expected a duration such as "200ms", "10s", "5m", got "soon"`);
    expect(error('exec = ["/bin/true"]\n[limits]\nmemory_max = "lots"\n')).toContain("line 3 field 'limits.memory_max': expected a size of at least 1M");
    expect(error('exec = ["/bin/true"]\n[limits]\ncpu_max = 50\n')).toContain("field 'limits.cpu_max': expected a percentage of one CPU");
    expect(error('exec = ["/bin/true"]\n[health]\ntype = "ping"\ntarget = "x"\n')).toContain(`field 'health.type': expected one of "exec", "tcp", "http", "file"`);
    expect(error('exec = ["/bin/true"]\n[health]\ntype = "tcp"\ntarget = 80\ninterval = "1s"\ntimeout = "2s"\n')).toContain("field 'health.timeout': must be shorter than health.interval");
    expect(error('exec = ["/bin/true"]\n[stop]\nsignal = "SIGFOO"\n')).toContain("field 'stop.signal'");
    expect(error('exec = ["/bin/true"]\nafter = ["bad name"]\n')).toContain("field 'after': 'bad name' is not a unit name");
  });

  test("latency_nice: a whole number from -20 to 19; anything else names the file, line and field, and what to write", () => {
    const ok = (v: string) => {
      const r = parseUnitFile(`exec = ["/bin/true"]\nlatency_nice = ${v}\n`, P);
      return r.ok ? r.unit.latencyNice : r.error;
    };
    expect([ok("-20"), ok("0"), ok("19")]).toEqual([-20, 0, 19]);
    const r = parseUnitFile('exec = ["/bin/true"]\n', P);
    expect(r.ok && r.unit.latencyNice).toBeUndefined();
    const expected = (got: string) => `${P} line 2 field 'latency_nice': expected a whole number from -20 to 19 (lower: woken sooner), e.g. latency_nice = -10; got ${got}`;
    expect(ok("-21")).toBe(expected("-21"));
    expect(ok("20")).toBe(expected("20"));
    expect(ok("-2.5")).toBe(expected("-2.5"));
    expect(ok('"-10"')).toBe(expected('"-10"'));
    expect(ok("true")).toBe(expected("true"));
    // It is not a cgroup limit: in [limits] it is an unknown field there.
    expect(error('exec = ["/bin/true"]\n[limits]\nlatency_nice = -10\n')).toContain("line 3 field 'limits.latency_nice': unknown field");
    expect(error('exec = ["/bin/true"]\nlatency_nic = -10\n')).toContain("field 'latency_nic': unknown field (did you mean 'latency_nice'?)");
  });

  test("a missing or empty exec is refused", () => {
    expect(error('restart = "always"\n')).toContain("field 'exec': missing");
    expect(error("exec = []\n")).toContain("field 'exec': empty");
  });

  test("a bad unit name is refused", () => {
    expect(error('exec = ["/bin/true"]\n', "/etc/paio/units/-bad name.toml")).toContain("bad unit name '-bad name'");
  });

  test("fieldLine finds keys at the top, in sections and in inline tables", () => {
    expect(fieldLine(FULL, "restart")).toBe(7);
    expect(fieldLine(FULL, "health.timeout")).toBe(18);
    expect(fieldLine(FULL, "start_limit.burst")).toBe(10);
  });
});

describe("units of measure", () => {
  test("durations, sizes and CPU percentages", () => {
    expect(parseDuration("200ms")).toBe(200);
    expect(parseDuration("1.5m")).toBe(90_000);
    expect(parseDuration("5 s")).toBe(5000);
    expect(parseDuration("5")).toBeUndefined();
    expect(parseSize("128M")).toBe(134_217_728);
    expect(parseSize("1G")).toBe(1 << 30);
    expect(parseSize("4096")).toBe(4096);
    expect(parseSize("12X")).toBeUndefined();
    expect(parseCpuMax("50%")).toBe(50_000);
    expect(parseCpuMax("200%")).toBe(200_000);
    expect(parseCpuMax("0%")).toBeUndefined();
  });
});
