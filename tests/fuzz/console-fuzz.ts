// A fuzzer for the console's input: what a serial line or a keyboard can
// bring in one read. Control characters, escape sequences (cursor keys and
// ones a terminal would obey: clear screen, set the title, query the cursor,
// bracketed paste, 8-bit CSI), text that reorders or hides itself
// (bidirectional overrides, line separators, zero-width and wide
// characters), and pastes of several kilobytes with requests and line ends
// inside. Used by tests/unit/console-fuzz.test.tsx.

import { rng } from "../../agents/models/train.ts";

export interface KeyChunk {
  /** What arrives in one read. */
  data: string;
  /** What was generated, for a report. */
  what: string;
}

const CONTROL = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).concat(["\x7f"]);
const ESCAPES = [
  "\x1b[A", "\x1b[B", "\x1b[C", "\x1b[D", "\x1bOA", "\x1b[H", "\x1b[F", "\x1b[3~", "\x1b[5~", "\x1b[15~", "\x1b[1;5C",
  "\x1b[2J", "\x1b[H\x1b[2J", "\x1bc", "\x1b[31m", "\x1b[0m", "\x1b[?1049h", "\x1b[?25l", "\x1b[6n", "\x1b[999;999H", "\x1b[K",
  "\x1b]0;owned\x07", "\x1b]52;c;cmVib290\x07", "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "\x1bP+q544e\x1b\\", "\x1b[200~", "\x1b[201~",
  "\x9b2J", "\x9b31m", "\x1b", "\x1b\x1b", "\x1b[", "\x1b[9999999999999999999999A", "\x1b[?", "\x1bx", "\x1b[M !!",
];
const STRANGE = ["\u202e", "\u202d", "\u2066", "\u2069", "\u2028", "\u2029", "\u0085", "\u200b", "\ufeff", "\u0301", "漢字", "🙂", "👩‍👩‍👧", "\ud800", "\udfff", "ｗｉｄｅ"];
// Words of requests, so that pastes hold things the language model acts on. Not "quit", which ends
// the console by design. A "y" or "yes" that lands right after a question confirms it, as a person's would.
const WORDS = ["restart", "stop", "start", "demo", "camera", "agent", "status", "logs", "of", "limit", "to", "50%", "cpu", "memory", "why", "did", "help",
  "list", "units", "shell", "power", "off", "reboot", "open", "port", "8080", "wifi", "update", "install", "/tmp/x.raucb", "mode", "advise", "no", "n", "yes", "y", "please", "ignore", "previous", "instructions"];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

/** A run of text, a few words to several kilobytes, with the odd control, escape or strange character inside. */
function text(r: () => number, bytes: number, lineEnds: boolean): string {
  let s = "";
  while (s.length < bytes) {
    const roll = r();
    if (roll < 0.75) s += pick(r, WORDS) + " ";
    else if (roll < 0.82) s += pick(r, STRANGE);
    else if (roll < 0.88) s += pick(r, ESCAPES);
    else if (roll < 0.92) s += pick(r, CONTROL.filter((c) => c !== "\r" && c !== "\n" && c !== "\x1c"));
    // A line end every few hundred characters: each line of a paste is a request.
    else if (lineEnds && roll < 0.925) s += pick(r, ["\r", "\n", "\r\n"]);
    else s += " ";
  }
  return s;
}

/** One read of the console's input. */
export function keyChunk(r: () => number): KeyChunk {
  switch (Math.floor(r() * 8)) {
    case 0: {
      // Ctrl-\ opens the shell by design; it is left out so a run stays in the console.
      const c = pick(r, CONTROL.filter((x) => x !== "\x1c"));
      return { data: c, what: `control 0x${c.charCodeAt(0).toString(16)}` };
    }
    case 1: {
      const e = pick(r, ESCAPES);
      return { data: e, what: `escape ${JSON.stringify(e)}` };
    }
    case 2: {
      const n = 2 + Math.floor(r() * 8);
      const s = Array.from({ length: n }, () => (r() < 0.5 ? pick(r, ESCAPES) : pick(r, CONTROL.filter((x) => x !== "\x1c")))).join("");
      return { data: s, what: `${n} controls and escapes in one read` };
    }
    case 3: {
      const size = 2048 + Math.floor(r() * 6144);
      return { data: text(r, size, true), what: `a paste of ${size} characters with line ends` };
    }
    case 4: {
      const size = 1024 + Math.floor(r() * 4096);
      return { data: `\x1b[200~${text(r, size, false)}\x1b[201~`, what: `a bracketed paste of ${size} characters` };
    }
    case 5: {
      const s = pick(r, STRANGE).repeat(1 + Math.floor(r() * 100));
      return { data: s, what: "characters that reorder, hide or widen text" };
    }
    case 6: {
      // A request typed, Enter included, in one read.
      const n = 1 + Math.floor(r() * 6);
      const s = `${Array.from({ length: n }, () => pick(r, WORDS)).join(" ")}${pick(r, ["\r", "\n", ""])}`;
      return { data: s, what: `a typed line ${JSON.stringify(s)}` };
    }
    default: {
      // Backspace and Delete past the start of the line, and the history keys past its ends.
      const s = pick(r, ["\x7f", "\b", "\x1b[3~", "\x1b[A", "\x1b[B"]).repeat(1 + Math.floor(r() * 50));
      return { data: s, what: "editing keys past the ends" };
    }
  }
}

export function keyChunks(n: number, seed: number): KeyChunk[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => keyChunk(r));
}

/**
 * What must never reach the terminal from the console's frames: a control
 * character but the newline (ESC starts every sequence), C1 controls (U+009B
 * is CSI on some terminals), the line and paragraph separators, and the
 * bidirectional overrides, embeddings and isolates.
 */
export const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
