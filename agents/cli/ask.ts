// `paio ask [--dry-run] [--json] [--units a,b,c] "request in plain words"`
//
// Understands the request with the embedded language model and, without
// --dry-run, sends the resulting tool call to the agent (which asks the
// guard, runs it and writes it to the audit log). With --dry-run nothing is
// executed and no device is needed; --units gives the unit names to resolve
// against when there is no supervisor to ask. On the host the models come
// from out/models (make models); on the device from /usr/lib/paio/models.

import { existsSync } from "node:fs";

import { fileURLToPath } from "node:url";
import { ControlClient } from "../../init/control/client.ts";
import type { UnitSummary } from "../../init/control/protocol.ts";
import { loadPolicy, policyPaths } from "../guard/policy.ts";
import { Understander } from "../nlu/understand.ts";
import { MODEL_KEYS_DIR } from "../models/manifest.ts";
import type { CallResult } from "../protocol.ts";
import { connectAgent } from "./agent.ts";
import { terminalLine } from "../terminal-text.ts";

export const ASK_USAGE = `  ask [--dry-run] [--json] [--yes] [--units a,b] "TEXT"   do what TEXT asks (plain English), through the agent`;

function modelDirs(): { models: string; keys: string } {
  if (process.env.PAIO_MODELS_DIR) return { models: process.env.PAIO_MODELS_DIR, keys: process.env.PAIO_MODEL_KEYS_DIR ?? process.env.PAIO_MODELS_DIR };
  if (existsSync("/usr/lib/paio/models/manifest.json")) return { models: "/usr/lib/paio/models", keys: MODEL_KEYS_DIR };
  const built = fileURLToPath(new URL("../../out/models", import.meta.url));
  return { models: built, keys: built };
}

export async function askCommand(args: string[], json: boolean): Promise<number> {
  let dryRun = false;
  let yes = false;
  let units: string[] | undefined;
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--dry-run") dryRun = true;
    else if (a === "--yes") yes = true;
    else if (a === "--json") json = true;
    else if (a === "--units") {
      const v = args[++i];
      if (v === undefined) {
        console.error("paio: --units needs a comma-separated list of unit names");
        return 2;
      }
      units = v.split(",").map((s) => s.trim()).filter(Boolean);
    } else words.push(a);
  }
  const text = words.join(" ").trim();
  if (!text) {
    console.error(`paio: usage:\n${ASK_USAGE}`);
    return 2;
  }
  if (units === undefined) {
    try {
      const c = await ControlClient.connect();
      const r = await c.request({ op: "list" });
      c.close();
      units = r.ok ? (r.result as UnitSummary[]).map((u) => u.name) : [];
    } catch {
      if (!dryRun) {
        console.error("paio: cannot reach the supervisor to learn the unit names; give them with --units, or use --dry-run");
        return 5;
      }
      units = [];
    }
  }
  const dirs = modelDirs();
  let understander: Understander;
  try {
    let policy;
    try {
      policy = loadPolicy(policyPaths());
    } catch {
      policy = undefined;
    }
    understander = await Understander.load(dirs.models, dirs.keys, policy);
  } catch (e) {
    console.error(`paio: ${(e as Error).message}`);
    return 2;
  }
  const u = await understander.understand(text, units);
  if (dryRun || u.clarify || u.intent === "none") {
    if (json) console.log(JSON.stringify({ intent: u.intent, slots: u.slots, confidence: u.confidence, needs_confirmation: u.needs_confirmation, plan: u.plan, reply: u.reply }));
    else console.log(u.reply + (dryRun && u.plan.length ? `\n(dry run: would call ${u.plan.map((p) => `${p.tool} ${JSON.stringify(p.args)}`).join(", ")})` : ""));
    return 0;
  }
  let agent;
  try {
    agent = await connectAgent();
  } catch (e) {
    console.error(`paio: cannot reach the agent: ${(e as Error).message}`);
    return 5;
  }
  // A long call (an update's install) says how far it has got: on stderr, so stdout stays the answer.
  const progress = yes && u.plan[0]?.tool === "update.install" ? await progressFeed() : undefined;
  try {
    const step = u.plan[0]!;
    const r = await agent.request({ op: "call", tool: step.tool as never, args: step.args, confirmed: yes, utterance: text });
    if (!r.ok) {
      console.error(`paio: ${r.error.message}`);
      return 1;
    }
    const res = r.result as CallResult;
    if (json) console.log(JSON.stringify({ intent: u.intent, slots: u.slots, confidence: u.confidence, needs_confirmation: u.needs_confirmation, plan: u.plan, reply: res.reply, status: res.status, output: res.output, audit_seq: res.audit_seq }));
    else {
      // Replies and log lines carry data (names, log text): shown with their control characters made visible.
      console.log(res.reply.split("\n").map(terminalLine).join("\n"));
      if (res.status === "needs-confirmation") console.log("Run it again with --yes to confirm.");
      else if (res.output && typeof res.output === "object" && "lines" in (res.output as object)) console.log((res.output as { lines: string[] }).lines.map(terminalLine).join("\n"));
    }
    return res.status === "done" ? 0 : res.status === "needs-confirmation" ? 3 : 1;
  } finally {
    progress?.close();
    agent.close();
  }
}

/** A second connection to the agent that prints its progress events on stderr; undefined when it cannot be had. */
async function progressFeed(): Promise<{ close(): void } | undefined> {
  try {
    const feed = await connectAgent();
    feed.onEvent((e) => {
      if (e.event === "progress" && typeof e.text === "string") console.error(`paio: ${e.text.replace(/[\x00-\x1f\x7f]/g, " ")}`);
    });
    await feed.request({ op: "subscribe" });
    return feed;
  } catch {
    return undefined;
  }
}


