// The service manager in a booted image: cgroups, health that tells slow from
// dead, crash loops, OOM kills, re-adoption, the control socket and `paio`.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Guest } from "../../qemu/guest.ts";
import { bootGuest, consoleLine, sh } from "../helpers/guest.ts";

/** Shell helpers on top of `paio --json`. */
const HELPERS = `
# ufield UNIT FIELD: one top-level field of the unit's status (its JSON also holds nested "reason"s, of past exits).
ufield() { paio --json status "$1" | F="$2" bun -e 'const v = JSON.parse(await Bun.stdin.text())[process.env.F]; console.log(v ?? "")'; }
statepid() { sed -n "/\\"$1\\"/,/}/s/.*\\"pid\\": \\([0-9]*\\).*/\\1/p" /run/paio/supervisor.json | head -n 1; }
now() { cut -d' ' -f1 /proc/uptime; }
`;

const UNITS: Record<string, string> = {
  svc: `description = "ticks"
exec = ["/bin/sh", "-c", "while true; do echo tick; sleep 0.2; done"]
restart = "always"
restart_delay = "100ms"
`,
  web: `exec = ["/bin/sh", "-c", "mkdir -p /tmp/www && echo ok > /tmp/www/index.html && exec httpd -f -p 127.0.0.1:8081 -h /tmp/www"]
restart = "always"
restart_delay = "100ms"
[health]
type = "http"
target = "http://127.0.0.1:8081/index.html"
interval = "1s"
timeout = "500ms"
retries = 2
grace = "1s"
[stop]
timeout = "2s"
`,
  busy: `exec = ["/bin/sh", "-c", "while :; do :; done"]
restart = "always"
[health]
type = "exec"
target = "sleep 0.75"
interval = "1s"
timeout = "500ms"
retries = 2
grace = "1s"
[limits]
cpu_max = "20%"
`,
  crash: `exec = ["/bin/sh", "-c", "echo crashing; exit 1"]
restart = "always"
restart_delay = "100ms"
start_limit = { burst = 3, interval = "1m" }
`,
  hog: `exec = ["/bin/sh", "-c", "x=$(dd if=/dev/zero bs=1048576 count=200 2>/dev/null | tr '\\\\0' a); echo survived"]
restart = "never"
[limits]
memory_max = "24M"
`,
  asuser: `exec = ["/bin/sh", "-c", "id -u > /tmp/asuser.uid; exec sleep 1000"]
user = "monitor"
`,
};

describe("service manager", () => {
  let guest: Guest;
  const run = (script: string) => sh(guest, HELPERS + script);

  beforeAll(async () => {
    guest = await bootGuest();
    const writes = Object.entries(UNITS)
      .map(([name, text]) => `cat > /var/lib/paio/units/${name}.toml <<'UNIT'\n${text}UNIT`)
      .join("\n");
    // These tests are about the supervisor's own rules: the agent only watches meanwhile.
    const agentOff = "for i in $(seq 1 90); do paio agent mode off >/dev/null 2>&1 && break; sleep 1; done";
    const out = await sh(guest, `${agentOff}\n${writes}\npaio reload`);
    expect(out).toMatch(/added: busy, crash, hog, svc, web|added: .*svc/);
  }, 400_000);

  afterAll(async () => {
    if (guest && !guest.exited) expect(await guest.shutdown()).toBe(0);
  }, 120_000);

  test("each unit runs in its own cgroup with its limits, changeable at run time", async () => {
    const out = await run(`
      cat /sys/fs/cgroup/paio/busy/cpu.max
      pid=$(statepid svc); grep -q "^0::/paio/svc$" /proc/$pid/cgroup && echo svc-in-cgroup
      paio limit svc --cpu 25% --memory 64M
      cat /sys/fs/cgroup/paio/svc/cpu.max /sys/fs/cgroup/paio/svc/memory.max`);
    expect(out).toContain("20000 100000");
    expect(out).toContain("svc-in-cgroup");
    expect(out).toContain("25000 100000\n67108864");
  });

  test("a unit with 'user' runs as that user, still inside its cgroup", async () => {
    const out = await run(`
      i=0; while [ ! -s /tmp/asuser.uid ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
      cat /tmp/asuser.uid; pid=$(ufield asuser pid); grep -c "^0::/paio/asuser$" /proc/$pid/cgroup`);
    expect(out).toBe("100\n1\n");
  });

  test("kill -9 of a unit's process: back to running, with the time it took", async () => {
    const out = await run(`
      old=$(statepid svc); t0=$(now); kill -9 $old
      i=0; while [ $i -lt 200 ]; do new=$(statepid svc); [ -n "$new" ] && [ "$new" != "$old" ] && break; sleep 0.05; i=$((i+1)); done
      t1=$(now); echo "old=$old new=$new"; echo "respawn_s=$(echo "$t1 $t0" | awk '{printf "%.2f", $1-$2}')"
      ufield svc state`);
    expect(out).toMatch(/old=(\d+) new=(?!\1)\d+/);
    expect(out).toContain("running");
    const secs = Number(/respawn_s=([\d.]+)/.exec(out)![1]);
    console.log(`kill -9 to running again (guest time): ${secs.toFixed(2)} s`);
    expect(secs).toBeLessThan(10);
  });

  test("a stopped (SIGSTOP) unit fails its checks and is restarted", async () => {
    const out = await run(`
      i=0; while [ "$(ufield web state)" != running ] && [ $i -lt 30 ]; do sleep 0.5; i=$((i+1)); done
      old=$(ufield web pid); kill -STOP $old; t0=$(now)
      i=0; while [ $i -lt 300 ]; do new=$(statepid web); [ -n "$new" ] && [ "$new" != "$old" ] && break; sleep 0.1; i=$((i+1)); done
      echo "old=$old new=$new after=$(echo "$(now) $t0" | awk '{printf "%.1f", $1-$2}')"`);
    expect(out).toMatch(/old=(\d+) new=(?!\1)\d+/);
    // interval x retries + timeout + the stop time-out, with room for a slow emulator
    expect(Number(/after=([\d.]+)/.exec(out)![1])).toBeLessThan(20);
    await consoleLine(guest, /web: unhealthy: .*stopped \(SIGSTOP\)/);
  });

  test("a merely slow unit (busy, answering late) is degraded, not restarted", async () => {
    const out = await run(`
      i=0; while [ "$(ufield busy state)" != degraded ] && [ $i -lt 40 ]; do sleep 0.5; i=$((i+1)); done
      ufield busy state; sleep 5; echo "restarts=$(ufield busy restarts) state=$(ufield busy state)"`);
    expect(out).toMatch(/^degraded/);
    expect(out).toContain("restarts=0 state=degraded");
  });

  test("a crash-looping unit backs off, then fails at its start limit with the reason", async () => {
    const out = await run(`
      i=0; while [ "$(ufield crash state)" != failed ] && [ $i -lt 40 ]; do sleep 0.5; i=$((i+1)); done
      ufield crash state; ufield crash reason`);
    expect(out).toMatch(/^failed\nstart limit reached: 3 starts within 1m/);
  });

  test("a unit exceeding memory_max is reported as an OOM kill", async () => {
    const out = await run(`
      i=0; while [ "$(ufield hog state)" != failed ] && [ $i -lt 60 ]; do sleep 0.5; i=$((i+1)); done
      ufield hog state; ufield hog reason; grep oom_kill /sys/fs/cgroup/paio/hog/memory.events`);
    expect(out).toMatch(/^failed\nOOM kill/);
    expect(out).toMatch(/oom_kill [1-9]/);
  });

  test("kill -9 of the supervisor: every unit keeps its PID and logs keep flowing", async () => {
    const out = await run(`
      before="$(ufield svc pid) $(ufield web pid) $(ufield busy pid)"
      size0=$(wc -l < /var/lib/paio/logs/svc.log)
      old=$(cat /run/paio/supervisor.pid); kill -9 $old
      i=0; while [ $i -lt 150 ]; do new=$(cat /run/paio/supervisor.pid); [ "$new" != "$old" ] && paio units >/dev/null 2>&1 && break; sleep 0.2; i=$((i+1)); done
      sleep 1
      after="$(ufield svc pid) $(ufield web pid) $(ufield busy pid)"
      size1=$(wc -l < /var/lib/paio/logs/svc.log)
      echo "before=[$before] after=[$after] logs $size0 -> $size1"`);
    const m = /before=\[(.*)\] after=\[(.*)\] logs (\d+) -> (\d+)/.exec(out)!;
    expect(m[1]).toMatch(/^\d+ \d+ \d+$/);
    expect(m[2]).toBe(m[1]);
    expect(Number(m[4])).toBeGreaterThan(Number(m[3]));
    await consoleLine(guest, /svc: adopted running process/);
  });

  test("paio: status, logs, stop and start; exit codes for scripts", async () => {
    const out = await run(`
      paio status svc | head -n 1
      paio logs svc -n 3 | tail -n 1
      paio stop svc; echo "stop=$?"; cat /sys/fs/cgroup/paio/svc/cgroup.procs | wc -l
      paio start svc >/dev/null; echo "start=$?"; ufield svc state
      paio status no-such-unit; echo "missing=$?"
      paio frobnicate 2>/dev/null; echo "usage=$?"`);
    expect(out).toMatch(/^svc: running \(pid \d+\)/);
    expect(out).toContain("tick");
    expect(out).toMatch(/svc: inactive\nstop=0\n0\n/);
    expect(out).toMatch(/start=0\nrunning/);
    expect(out).toContain("missing=3");
    expect(out).toContain("usage=2");
  });

  test("paio freeze and thaw: the unit's processes stop where they are and run again", async () => {
    const out = await run(`
      L=/var/lib/paio/logs/svc.log
      paio freeze svc; echo "freeze=$?"; grep frozen /sys/fs/cgroup/paio/svc/cgroup.events
      sleep 0.5; n0=$(wc -l < $L); sleep 2; n1=$(wc -l < $L); echo "while frozen: $((n1 - n0)) lines"
      paio thaw svc; echo "thaw=$?"; grep frozen /sys/fs/cgroup/paio/svc/cgroup.events
      sleep 2; n2=$(wc -l < $L); [ $((n2 - n1)) -gt 3 ] && echo "thawed: it logs again"
      paio thaw no-such-unit 2>/dev/null; echo "missing=$?"; paio freeze 2>/dev/null; echo "usage=$?"`);
    expect(out).toMatch(/^svc: running, frozen: its processes do not run until 'paio thaw'\nfreeze=0\nfrozen 1\nwhile frozen: 0 lines\nsvc: running, not frozen\nthaw=0\nfrozen 0\nthawed: it logs again\nmissing=3\nusage=2$/m);
  });

  test("reload applies added, removed and changed files and leaves unchanged running units alone", async () => {
    const out = await run(`
      before=$(statepid svc)
      rm /var/lib/paio/units/crash.toml
      sed -i 's/retries = 2/retries = 3/' /var/lib/paio/units/busy.toml
      printf 'exec = ["/bin/sh", "-c", "sleep 1000"]\\nafter = ["svc"]\\n' > /var/lib/paio/units/late.toml
      printf 'exec = ["/bin/true"]\\nrequires = ["ghost"]\\n' > /var/lib/paio/units/orphan.toml
      printf 'exec = ["/bin/true"]\\nafter = ["loop2"]\\n' > /var/lib/paio/units/loop1.toml
      printf 'exec = ["/bin/true"]\\nafter = ["loop1"]\\n' > /var/lib/paio/units/loop2.toml
      paio reload
      echo "svc $before -> $(statepid svc)"`);
    expect(out).toContain("added: late");
    expect(out).toContain("removed: crash");
    expect(out).toMatch(/changed: busy/);
    expect(out).toMatch(/error: .*orphan\.toml field 'requires': unknown unit 'ghost'/);
    expect(out).toMatch(/error: .*loop1\.toml: dependency cycle/);
    const m = /svc (\d+) -> (\d+)/.exec(out)!;
    expect(m[2]).toBe(m[1]);
  });

  test("the control socket survives 10,000 malformed requests and refuses strangers", async () => {
    const fuzz = `
      const path = "/run/paio/control.sock";
      let answers = 0;
      const queue = [];
      const flush = (s) => { while (queue.length) { const n = s.write(queue[0]); if (n < queue[0].length) { queue[0] = queue[0].subarray(Math.max(0, n)); return; } queue.shift(); } };
      const sock = await Bun.connect({ unix: path, socket: { drain: flush, data(_s, d) { answers += (Buffer.from(d).toString().match(/\\n/g) || []).length; } } });
      const junk = () => {
        const r = Math.random();
        if (r < 0.3) return JSON.stringify({ op: ["list", "stop", "x", 3, null][Math.floor(Math.random() * 5)], unit: Math.random() < 0.5 ? 42 : "nope" });
        if (r < 0.6) return "~" + Array.from({ length: Math.floor(Math.random() * 80) }, () => String.fromCharCode(Math.floor(Math.random() * 256))).join("").replace(/\\n/g, "");
        if (r < 0.8) return "[" + "1,".repeat(Math.floor(Math.random() * 50)) + "]";
        return "{\\"op\\": \\"set-limits\\", \\"unit\\": \\"svc\\", \\"limits\\": {\\"cpu_max\\": 12}}";
      };
      for (let i = 0; i < 10000; i++) queue.push(new TextEncoder().encode(junk() + "\\n"));
      flush(sock);
      for (let i = 0; i < 600 && answers < 10000; i++) await Bun.sleep(100);
      console.log("answers=" + answers);
      const ok = await Bun.connect({ unix: path, socket: { data(_s, d) { console.log("reply=" + Buffer.from(d).toString().trim().slice(0, 60)); process.exit(0); } } });
      ok.write(JSON.stringify({ id: 1, op: "list" }) + "\\n");
      await Bun.sleep(10000);`;
    const big = `
      const sock = await Bun.connect({ unix: "/run/paio/control.sock", socket: { data(_s, d) { console.log("big=" + Buffer.from(d).toString().trim().slice(0, 80)); process.exit(0); } } });
      sock.write("x".repeat(100000));
      await Bun.sleep(10000);`;
    const out = await run(`
      cat > /tmp/fuzz.js <<'JS'
${fuzz}
JS
      cat > /tmp/big.js <<'JS'
${big}
JS
      bun /tmp/fuzz.js
      bun /tmp/big.js
      su -s /bin/sh nobody -c 'paio units' ; echo "nobody=$?"
      su -s /bin/sh monitor -c 'paio units >/dev/null; echo "monitor-read=$?"; paio stop svc; echo "monitor-stop=$?"'
      paio status svc | head -n 1`);
    expect(out).toContain("answers=10000");
    expect(out).toMatch(/reply=\{"id":1,"ok":true/);
    expect(out).toMatch(/big=\{"ok":false,"error":\{"code":"too-large"/);
    expect(out).toContain("permission denied");
    expect(out).toContain("nobody=4");
    expect(out).toContain("monitor-read=0");
    expect(out).toContain("monitor-stop=4");
    expect(out).toMatch(/svc: running/);
  }, 300_000);
});
