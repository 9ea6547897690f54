// The chaos campaign's workload: a small but realistic set of services, as a
// device would run them, written into a booted guest by one shell script.
//
//  web      busybox httpd with an HTTP health check (a CGI script). While
//           /run/chaos/slow exists each check works the CPU for 3 s: slow,
//           but alive.
//  broker   a publish/subscribe broker (Bun, TCP 127.0.0.1:1883), TCP check.
//  publisher  publishes a numbered reading every 200 ms; reconnects by itself.
//  batch    a periodic batch job (1 burst of work every 4 s). It refuses to
//           start while /run/chaos/crash-until names a later uptime: a crash
//           loop with a cause that goes away.
//  leaky    a Bun service that, once /run/chaos/leak appears, leaks 2 MiB
//           every 100 ms until its memory.max (96 MiB) ends it.
//  workers  a shell that keeps three worker processes; /run/chaos/bomb makes
//           it fork without end (pids.max 64 holds it; it never stops by itself).
//  logger   writes a numbered line every 50 ms: its log shows whether lines
//           were lost or torn.
//
// Scripts live on the data partition (/var/lib/paio/chaos), so they survive
// the power-cut runs' reboots; the fault flags live in /run, so a reboot
// clears them.

import { CUT_SHORT_MARK } from "../../init/supervisor/unit-log.ts";

export const CHAOS_UNITS = ["web", "broker", "publisher", "batch", "leaky", "workers", "logger"] as const;
export type ChaosUnit = (typeof CHAOS_UNITS)[number];

const DIR = "/var/lib/paio/chaos";

const HEALTHZ = `#!/bin/sh
# Slow while /run/chaos/slow exists: 3 s of work before the answer.
if [ -e /run/chaos/slow ]; then
  end=$(( $(cut -d. -f1 /proc/uptime) + 3 ))
  while [ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ]; do :; done
fi
printf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'
`;

const BROKER = `// A tiny publish/subscribe broker: "SUB" lines subscribe, "PUB topic text" lines are sent to every subscriber.
const subs = new Set();
let messages = 0;
Bun.listen({
  hostname: "127.0.0.1",
  port: 1883,
  socket: {
    open(s) { s.data = ""; },
    data(s, d) {
      const text = s.data + d.toString();
      const lines = text.split("\\n");
      s.data = lines.pop();
      for (const l of lines) {
        if (l === "SUB") subs.add(s);
        else if (l.startsWith("PUB ")) { messages++; for (const t of subs) t.write(l.slice(4) + "\\n"); }
      }
    },
    close(s) { subs.delete(s); },
    error(s) { subs.delete(s); },
  },
});
console.log("broker: listening on 127.0.0.1:1883");
setInterval(() => console.log("broker: " + messages + " messages, " + subs.size + " subscribers"), 10000);
`;

const PUBLISHER = `#!/bin/sh
# Publishes a reading every 200 ms; when the broker goes away it reconnects.
i=0
while true; do
  while true; do i=$((i + 1)); echo "PUB sensors/temp $i"; sleep 0.2; done | /bin/busybox nc 127.0.0.1 1883
  echo "publisher: broker gone, reconnecting"
  sleep 1
done
`;

const BATCH = `#!/bin/sh
# A batch job: a burst of work every 4 s. It cannot start while its input is
# "missing" (until the uptime in /run/chaos/crash-until).
if [ -e /run/chaos/crash-until ] && [ "$(cut -d. -f1 /proc/uptime)" -lt "$(cat /run/chaos/crash-until)" ]; then
  echo "batch: input missing, cannot start"
  exit 3
fi
n=0
while true; do
  n=$((n + 1)); i=0
  while [ $i -lt 5000 ]; do i=$((i + 1)); done
  echo "batch: run $n done"
  sleep 4
done
`;

const LEAKY = `// Leaks once /run/chaos/leak appears (the flag is taken, so a restart is clean): as many MiB
// a second as the flag says, 20 when it is empty.
const fs = require("node:fs");
const kept = [];
let rate = 0;
let owed = 0;
console.log("leaky: started");
setInterval(() => {
  if (rate === 0 && fs.existsSync("/run/chaos/leak")) {
    rate = Number(fs.readFileSync("/run/chaos/leak", "utf8").trim()) || 20;
    fs.rmSync("/run/chaos/leak", { force: true });
    console.log("leaky: leaking " + rate + " MiB/s");
  }
  owed += rate / 10;
  while (owed >= 1) { kept.push(Buffer.alloc(1 << 20, 7)); owed -= 1; }
}, 100);
`;

const WORKERS = `#!/bin/sh
# Three workers; /run/chaos/bomb starts forking without end.
work() { while true; do sleep 5; done; }
for i in 1 2 3; do work & done
echo "workers: 3 workers started"
while true; do
  # /run/chaos/hog: one worker spins for as many seconds as the flag says (a CPU hog inside the unit).
  if [ -e /run/chaos/hog ]; then
    s=$(cat /run/chaos/hog); rm -f /run/chaos/hog; end=$(( $(cut -d. -f1 /proc/uptime) + \${s:-30} ))
    echo "workers: spinning for \${s:-30} s"
    ( while [ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ]; do :; done ) &
  fi
  if [ -e /run/chaos/bomb ]; then
    rm -f /run/chaos/bomb
    echo "workers: forking without end"
    # Runaway forking that does not end by itself: each child lives a minute and the loop refills the group up to
    # pids.max. A non-interactive shell exits when a fork fails, so here the supervisor's restart (the whole group
    # killed) ends it; a bomb that keeps its group pinned is the agent's (tests/unit/agent-detect.test.ts).
    while true; do sleep 60 & done
  fi
  sleep 1
done
`;

const LOGGER = `#!/bin/sh
# A numbered line every 50 ms, continuing the count of the last boot's log:
# from its last whole line (a torn "line 28" of "line 287", which the
# supervisor's note follows, is not one).
n=$(tail -n 50 /var/lib/paio/logs/logger.log 2>/dev/null | awk '/^${CUT_SHORT_MARK}/ { if (whole) last = before; whole = 0; next } /^line [0-9]+$/ { before = last; last = $2; whole = 1; next } { whole = 0 } END { print last }')
n=\${n:-0}
while true; do n=$((n + 1)); echo "line $n"; sleep 0.05; done
`;

const UNITS: Record<ChaosUnit, string> = {
  web: `description = "Web service (chaos workload)"
exec = ["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:8081", "-h", "${DIR}/www"]
restart = "always"
[health]
type = "http"
target = "http://127.0.0.1:8081/cgi-bin/healthz"
interval = "3s"
timeout = "1s"
retries = 3
grace = "3s"
[stop]
timeout = "3s"
`,
  broker: `description = "Message broker (chaos workload)"
exec = ["/usr/bin/bun", "${DIR}/broker.js"]
restart = "always"
[health]
type = "tcp"
target = "127.0.0.1:1883"
interval = "3s"
timeout = "1s"
[limits]
memory_max = "96M"
`,
  publisher: `description = "Sensor publisher (chaos workload)"
exec = ["/bin/sh", "${DIR}/publisher.sh"]
after = ["broker"]
restart = "always"
`,
  batch: `description = "Periodic batch job (chaos workload)"
exec = ["/bin/sh", "${DIR}/batch.sh"]
restart = "always"
`,
  leaky: `description = "Leaky service (chaos workload)"
exec = ["/usr/bin/bun", "${DIR}/leaky.js"]
restart = "on-failure"
[limits]
memory_max = "96M"
`,
  workers: `description = "Forking service (chaos workload)"
exec = ["/bin/sh", "${DIR}/workers.sh"]
restart = "always"
[limits]
pids_max = 64
[stop]
timeout = "3s"
`,
  logger: `description = "Numbered log lines (chaos workload)"
exec = ["/bin/sh", "${DIR}/logger.sh"]
restart = "always"
`,
};

/** A shell heredoc that writes FILE with TEXT (quoted: nothing in TEXT is expanded). */
function writeFile(path: string, text: string): string {
  return `cat > ${path} <<'CHAOS_EOF'\n${text}CHAOS_EOF\n`;
}

/** The guest script that installs the workload and loads it (paio reload). */
export function installScript(): string {
  return [
    `mkdir -p ${DIR}/www/cgi-bin /run/chaos`,
    writeFile(`${DIR}/www/cgi-bin/healthz`, HEALTHZ),
    `chmod 755 ${DIR}/www/cgi-bin/healthz`,
    writeFile(`${DIR}/broker.js`, BROKER),
    writeFile(`${DIR}/publisher.sh`, PUBLISHER),
    writeFile(`${DIR}/batch.sh`, BATCH),
    writeFile(`${DIR}/leaky.js`, LEAKY),
    writeFile(`${DIR}/workers.sh`, WORKERS),
    writeFile(`${DIR}/logger.sh`, LOGGER),
    ...CHAOS_UNITS.map((u) => writeFile(`/var/lib/paio/units/${u}.toml`, UNITS[u])),
    "sync",
    "paio reload",
  ].join("\n");
}
