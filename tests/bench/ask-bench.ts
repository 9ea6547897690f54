#!/usr/bin/env bun
// `make bench`, language: how long the embedded model takes to understand a
// request on this host — in process (the console's case) and as a whole
// `paio ask --dry-run` command (process start, model load and verification
// included) — beside a baseline of the same Bun starting and exiting.

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Understander } from "../../agents/nlu/understand.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const MODELS = join(REPO, "out/models");
const UNITS = ["camera", "nginx", "mqtt-bridge", "demo", "db"];
const REQUESTS = ["restart camra", "give mqtt-bridge at most half a cpu", "why did demo restart?", "power off", "show the last 30 lines of nginx", "what is eating the memory", "tell me a joke"];

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

const nlu = await Understander.load(MODELS, MODELS);
const inProcess: number[] = [];
for (let i = 0; i < 1000; i++) {
  const t0 = performance.now();
  await nlu.understand(REQUESTS[i % REQUESTS.length]!, UNITS);
  inProcess.push(performance.now() - t0);
}
const cli: number[] = [];
const baseline: number[] = [];
for (let i = 0; i < 7; i++) {
  let t0 = performance.now();
  Bun.spawnSync([join(REPO, "bin/paio"), "ask", "--dry-run", "--json", "--units", UNITS.join(","), REQUESTS[i % REQUESTS.length]!], { stdout: "pipe" });
  cli.push(performance.now() - t0);
  t0 = performance.now();
  Bun.spawnSync([process.execPath, "-e", "0"], { stdout: "pipe" });
  baseline.push(performance.now() - t0);
}
console.log("paio ask (host, embedded model)");
console.log(`  understand() in process, 1000 requests:   p50 ${pct(inProcess, 0.5).toFixed(3)} ms, p99 ${pct(inProcess, 0.99).toFixed(3)} ms (model inference alone: p50 ${nlu.timing.p50?.toFixed(3)} ms, p99 ${nlu.timing.p99?.toFixed(3)} ms)`);
console.log(`  'paio ask --dry-run --json' command, 7 runs: p50 ${pct(cli, 0.5).toFixed(0)} ms, p99 ${pct(cli, 0.99).toFixed(0)} ms (bun -e 0 alone: p50 ${pct(baseline, 0.5).toFixed(0)} ms)`);
