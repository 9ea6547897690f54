// Training data for the intent model, written by a generator: templates per
// tool, filled with synonyms, polite wrappers, different word orders and
// typos. Unit names and numbers are placeholders (UNIT, NUM): the model
// learns the shape of a request, and names are resolved against the live
// unit list afterwards. The held-out test set (tests/nlu/heldout.tsv) is
// written by hand, separately; nothing here is copied from it.

import { rng } from "../models/train.ts";
import { PSK, SSID } from "./wifi.ts";

export const UNIT = "xunitx";
export const NUM = "xnumx";

type Templates = Record<string, string[]>;

// {a|b|c} picks one alternative; [x] is optional, [a|b] is none or one of a and b.
export const TEMPLATES: Templates = {
  "system.status": [
    "{how is|how's|hows} the {system|device|machine|box} [doing]",
    "{system|device} {status|health|state}",
    "{show|give me|what is} the {system|device|overall} {status|health}",
    "is {everything|the system|the device|all} {ok|okay|fine|healthy|alright}",
    "{how much|what} {memory|ram|cpu|disk|storage} is {used|free|in use|left}",
    "{what is|whats|show} the {cpu|memory|disk|network|temperature} {usage|load|use|status}",
    "how {hot|warm} is {it|the device|the cpu}",
    "{cpu|memory|disk|network|temperature} [usage|status]",
    "{any|are there} problems [right now|at the moment]",
    "{check|report on} {the system|system health|resources}",
  ],
  "unit.list": [
    "{list|show|display} [all] [the] {units|services|apps}",
    "what {units|services} {are running|are there|exist|do we have}",
    "which services {are|is} {running|installed|up}",
    "{units|services} [list]",
    "ls {units|services}",
    "what is running [on this device|here]",
  ],
  "unit.status": [
    "{status of|state of} [the] {unit|service} " + UNIT,
    "{how is|hows|how's} " + UNIT + " [doing]",
    "is " + UNIT + " {running|up|ok|alive|healthy|working}",
    UNIT + " {status|state}",
    "{show|check|give me} [the] {status|state|health} {of|for} " + UNIT,
    "what {is|'s} the {status|state} of " + UNIT,
    "{check|inspect|examine} " + UNIT,
  ],
  "unit.logs": [
    "{show|display|print|give me} [the] {logs|log|output} {of|for|from} " + UNIT,
    UNIT + " {logs|log|output}",
    "{show|tail} [the] last " + NUM + " lines of " + UNIT + "['s] {log|logs}",
    "what did " + UNIT + " {log|print|write|say}",
    "{read|check|view} " + UNIT + " {logs|log}",
    "logs [for] " + UNIT,
    "last " + NUM + " {log lines|lines} {of|from} " + UNIT,
  ],
  "unit.start": [
    "{start|launch|run|bring up|spin up|turn on|enable} [the] [unit|service] " + UNIT,
    "{start|launch} " + UNIT + " [up] [again|now]",
    UNIT + " {start|on}",
    "{get|bring} " + UNIT + " {running|up|going} [again]",
  ],
  "unit.stop": [
    "{stop|halt|shut down|shutdown|turn off|disable|kill the service} [the] [unit|service] " + UNIT,
    "{stop|halt} " + UNIT + " [now|for now]",
    UNIT + " {stop|off}",
    "{take|bring} " + UNIT + " down",
  ],
  "unit.restart": [
    "{restart|reboot|bounce|reload|cycle|kick|reset} [the] [unit|service] " + UNIT,
    "{restart|relaunch|respawn} " + UNIT + " [again|now|please]",
    UNIT + " {restart|needs a restart}",
    "{turn|switch} " + UNIT + " off and on again",
    "{stop and start|stop then start} " + UNIT,
  ],
  "unit.limit": [
    "{limit|cap|restrict|throttle|constrain} " + UNIT + " to " + NUM + " {cpu|cores|core|percent|% cpu|mb|gb|megs|memory|ram}",
    "{give|allow} " + UNIT + " at most " + NUM + " {cpu|cores|percent|mb|gb|of memory|of ram}",
    "{set|put} [a] {cpu|memory|ram} limit [of " + NUM + "] {on|for} " + UNIT + " [to " + NUM + "]",
    "dont let " + UNIT + " use more than " + NUM + " {cpu|cores|mb|gb|percent}",
    UNIT + " {should|must} use {at most|no more than|less than} " + NUM + " {cpu|mb|gb|percent|cores}",
    "{limit|cap} {cpu|memory|ram} {of|for} " + UNIT + " [at|to] " + NUM,
    "{half a cpu|a quarter of a core|one core|two cores} {for|max for} " + UNIT,
  ],
  "unit.prioritize": [
    "{prioritize|prioritise|favor|favour|boost} " + UNIT,
    "{give|set} " + UNIT + " {high|higher|low|lower|normal} priority",
    "make " + UNIT + " {more|less} important",
    "{deprioritize|deprioritise|demote|lower the priority of} " + UNIT,
    UNIT + " {is latency sensitive|needs low latency|should be fast|is not important}",
    "set {the} priority of " + UNIT + " to {high|low|normal}",
    "{reset|restore} " + UNIT + "['s] priority [to normal]",
  ],
  "process.top": [
    "{what|which} {process|processes|programs} {use|uses|are using|is using|eat|hog} [the] most {cpu|memory|ram}",
    "top [" + NUM + "] {processes|procs} [by {cpu|memory}]",
    "{show|list} [the] {top|biggest|heaviest} [" + NUM + "] processes [by {cpu|memory|ram}]",
    "whats {eating|using|hogging} [all] [the] {cpu|memory|ram}",
    "{cpu|memory} hogs",
  ],
  "process.kill": [
    "{kill|terminate|end} {process|pid|proc} " + NUM,
    "kill -9 " + NUM,
    "{kill|end|stop} {the process|the program} {with pid|numbered|number} " + NUM,
    "{terminate|kill} " + NUM,
  ],
  "incident.list": [
    "{show|list|any} [recent] {incidents|problems|issues|alerts|events}",
    "what {happened|went wrong|broke} [recently|today|lately]",
    "{were there|have there been} any {incidents|problems|issues} [today|recently]",
    "incident {list|history|log}",
    "what did the agent do [recently|today]",
  ],
  "incident.explain": [
    "why did " + UNIT + " {restart|crash|stop|fail|get restarted|get killed|die}",
    "why {is|was} " + UNIT + " {down|failed|restarted|frozen|limited|stopped}",
    "{explain|tell me about} [the] {last|latest} {decision|action|incident} [on|for|about " + UNIT + "]",
    "what happened to " + UNIT,
    "why {did you|did the agent} {restart|stop|freeze|limit|touch} " + UNIT,
    "{explain|justify} {that|your decision|what you did}",
    "why [did that happen]",
  ],
  "agent.mode": [
    "{set|switch|change|put} [the] agent [mode] to {auto|automatic|advise|advisory|off}",
    "{agent|autonomy} mode {auto|advise|off}",
    "{only|just} {suggest|propose|advise} [dont act|do not act]",
    "{stop|dont|do not} {healing|acting|fixing things} [on your own|automatically|alone]",
    "{turn off|disable|switch off|pause} the agent",
    "{turn on|enable|resume} {the agent|automatic healing|autopilot}",
    "{heal|fix things} {automatically|on your own|alone}",
    "go {auto|automatic|advise|advisory} mode",
  ],
  "network.status": [
    "is the {network|internet|connection|ethernet|lan|link|wifi} {up|working|ok|connected|down|online}",
    "{whats|what is|what's|tell me|show me} [my|the] {ip|ip address|address|addresses} [of the device|of this box]",
    "{show|check|test} [the] {network|connection|connectivity|interfaces|links}",
    "am i {online|connected} [to the network]",
    "{are we|is the device|is it} {online|connected|reachable}",
    "{network|connection|connectivity|ethernet|link} {status|state}",
    "{how strong|how good} is the {wifi|wireless|wi-fi} [signal]",
    "{wifi|wi-fi|wireless} {signal|strength|status}",
    "is the {clock|time} {synced|synchronised|synchronized|right|correct|in sync}",
    "{did|has} the {clock|time} {sync|synchronise|synchronize} [yet]",
    "do we have {internet|network|a connection|connectivity}",
    "{which|what} {address|ip} did {dhcp|the router} give [us|me]",
  ],
  "network.wifi": [
    "{connect|connect me|hook me up} to {wifi|wi-fi|the wifi|the network|wireless network} " + SSID + " {with|using} [the] {password|passphrase|key} " + PSK,
    "{join|use} [the] {wifi|wi-fi|network} " + SSID + " [with] {password|passphrase|key} " + PSK,
    "{connect|join} " + SSID + " {with|using} {password|passphrase|key} " + PSK,
    "{set|configure|change} [the] {wifi|wi-fi|wireless} to " + SSID + " {password|key|passphrase} " + PSK,
    "{wifi|wi-fi} " + SSID + " {password|passphrase|key} " + PSK,
    "{switch|move} to {wifi|the network|wi-fi} " + SSID + " {password|key} {is|=} " + PSK,
  ],
  "network.open_port": [
    "{open|allow|unblock|expose} port " + NUM + " {for|on|to} " + UNIT,
    "{let|allow} {traffic|connections|people} {in|through} {on|to} port " + NUM + " {for|of} " + UNIT,
    "{open|allow} " + NUM + " {for|on} " + UNIT + " in the firewall",
    UNIT + " {needs|should have|must have} port " + NUM + " open",
    "make " + UNIT + " {reachable|accessible} on port " + NUM,
    "{open|punch} [a hole in] the firewall {for|on} " + UNIT + " port " + NUM,
  ],
  "power.reboot": [
    "{reboot|restart} [the] {device|system|machine|box|computer}",
    "{reboot|restart} [now|please]",
    "{do a|perform a} {reboot|restart} [of the device]",
    "{power cycle|reset} the {device|machine|system}",
  ],
  "power.poweroff": [
    "{power off|shut down|shutdown|turn off|switch off} [the] {device|system|machine|box|computer}",
    "{power off|poweroff|shutdown|shut down|halt} [now|please]",
    "{turn|switch} [it] off",
    "{power down|go to sleep|turn yourself off}",
  ],
  help: [
    "help",
    "{what can you do|what do you do|what are your commands|how do i use this|what commands are there}",
    "{show|list} [the] {commands|tools|options}",
    "{help me|i need help|how does this work}",
    "what can i {ask|say|type}",
  ],
  none: [
    "{tell me a joke|whats the weather|who are you|hello|hi|thanks|thank you|good morning}",
    "{order|buy|book} {a pizza|tickets|a taxi}",
    "{what is|whats} the {meaning of life|capital of france|time in tokyo}",
    "{play|sing} {some music|a song}",
    "{translate|spell|define} {this|hello|ubiquitous}",
    "asdf {qwer|zxcv|jkl}",
    "{install|download|update} {chrome|windows|a game}",
    "{write|compose} {an email|a poem|code}",
    "{the|a|my} {cat|dog|car} is {red|blue|happy}",
    "{ok|okay|hmm|yes|no|maybe}",
    "{open|visit|browse} {youtube|google|a website}",
  ],
};

export const POLITE_PREFIX = ["", "", "", "please ", "could you ", "can you ", "would you ", "hey paio ", "paio ", "i want to ", "i need you to ", "kindly ", "pls ", "go ahead and "];
export const POLITE_SUFFIX = ["", "", "", " please", " thanks", " now", " for me", " asap", " thank you", " pls", "?"];

/** A parsed template: a sequence of text and groups; a group is a list of alternatives, each a sequence. */
type Part = string | { optional: boolean; alts: Part[][] };

/** Parses "{a|b}" (one of) and "[a|b]" (none or one of), nested to any depth. */
export function parseTemplate(tpl: string): Part[] {
  let i = 0;
  const seq = (close?: string): Part[][] => {
    const alts: Part[][] = [[]];
    let text = "";
    const flush = () => {
      if (text) alts[alts.length - 1]!.push(text);
      text = "";
    };
    while (i < tpl.length) {
      const c = tpl[i++]!;
      if (c === "{" || c === "[") {
        flush();
        const inner = seq(c === "{" ? "}" : "]");
        alts[alts.length - 1]!.push({ optional: c === "[", alts: inner });
      } else if (c === "|" && close) {
        flush();
        alts.push([]);
      } else if (c === close) {
        flush();
        return alts;
      } else if (c === "}" || c === "]" || c === "|") {
        throw new Error(`template ${JSON.stringify(tpl)}: unexpected '${c}' at ${i - 1}`);
      } else text += c;
    }
    if (close) throw new Error(`template ${JSON.stringify(tpl)}: '${close}' missing`);
    flush();
    return alts;
  };
  return seq()[0]!;
}

const tidy = (s: string) => s.replace(/\s+/g, " ").trim();

/** One random expansion: each {…} picks one alternative, each […] is left out half the time or picks one. */
export function expand(tpl: string, r: () => number): string {
  const walk = (parts: Part[]): string =>
    parts.map((p) => {
      if (typeof p === "string") return p;
      if (p.optional && r() < 0.5) return "";
      return walk(p.alts[Math.floor(r() * p.alts.length)]!);
    }).join("");
  return tidy(walk(parseTemplate(tpl)));
}

/** Every expansion of a template (what expand can ever return), without repeats. */
export function expansions(tpl: string): string[] {
  const walk = (parts: Part[]): string[] => {
    let acc = [""];
    for (const p of parts) {
      const options = typeof p === "string" ? [p] : [...(p.optional ? [""] : []), ...p.alts.flatMap(walk)];
      acc = acc.flatMap((a) => options.map((o) => a + o));
    }
    return acc;
  };
  return [...new Set(walk(parseTemplate(tpl)).map(tidy))];
}

const KEYS = "qwertyuiopasdfghjklzxcvbnm";

/** One typo in one word (not in placeholders): a dropped, doubled, swapped or replaced letter. */
function typo(text: string, r: () => number): string {
  const words = text.split(" ");
  const idx = words.map((w, i) => ({ w, i })).filter(({ w }) => w.length > 3 && w !== UNIT && w !== NUM);
  if (idx.length === 0) return text;
  const { w, i } = idx[Math.floor(r() * idx.length)]!;
  const p = 1 + Math.floor(r() * (w.length - 2));
  const kind = Math.floor(r() * 4);
  const nw = kind === 0 ? w.slice(0, p) + w.slice(p + 1)
    : kind === 1 ? w.slice(0, p) + w[p] + w.slice(p)
    : kind === 2 ? w.slice(0, p - 1) + w[p] + w[p - 1] + w.slice(p + 1)
    : w.slice(0, p) + KEYS[Math.floor(r() * KEYS.length)] + w.slice(p + 1);
  words[i] = nw;
  return words.join(" ");
}

export interface Example {
  text: string;
  intent: string;
}

export const INTENTS = Object.keys(TEMPLATES);

/** `perIntent` generated utterances for every intent, seeded. */
/** Letters typed at random: one to four made-up words. */
function gibberish(r: () => number): string {
  const words = 1 + Math.floor(r() * 4);
  return Array.from({ length: words }, () => Array.from({ length: 2 + Math.floor(r() * 7) }, () => KEYS[Math.floor(r() * KEYS.length)]).join("")).join(" ");
}

export function generate(perIntent: number, seed: number): Example[] {
  const r = rng(seed);
  const out: Example[] = [];
  for (let n = 0; n < perIntent; n++) out.push({ text: gibberish(r), intent: "none" });
  for (const intent of INTENTS) {
    const tpls = TEMPLATES[intent]!;
    for (let n = 0; n < perIntent; n++) {
      let text = expand(tpls[Math.floor(r() * tpls.length)]!, r);
      if (intent !== "none" && r() < 0.5) text = POLITE_PREFIX[Math.floor(r() * POLITE_PREFIX.length)]! + text + POLITE_SUFFIX[Math.floor(r() * POLITE_SUFFIX.length)]!;
      if (r() < 0.25) text = typo(text, r);
      out.push({ text: text.trim(), intent });
    }
  }
  return out;
}
