// The console UI, for an 80x24 serial line or a screen: a status strip, the
// feed of what the agent notices and does, the conversation, and a chat line
// with history (Up/Down). ASCII only unless the terminal says UTF-8; no
// colour when NO_COLOR is set or the terminal is a vt100. `shell` (or
// Ctrl-\) opens a root shell and comes back here when it exits.

import { Box, Text, useApp, useInput } from "ink";
import { useEffect, useRef, useState } from "react";
import type { AgentEvent } from "../protocol.ts";
import type { Engine, StatusLine } from "./engine.ts";
import { maskSecrets } from "../nlu/wifi.ts";
import { terminalLine } from "../terminal-text.ts";

export interface Look {
  columns: number;
  rows: number;
  unicode: boolean;
  colour: boolean;
}

export function lookFromEnv(env: Record<string, string | undefined>, columns = 80, rows = 24): Look {
  const lang = `${env.LC_ALL ?? ""}${env.LC_CTYPE ?? ""}${env.LANG ?? ""}`;
  return {
    columns: columns || 80,
    rows: rows || 24,
    unicode: /utf-?8/i.test(lang) && env.TERM !== "vt100",
    colour: !env.NO_COLOR && env.TERM !== "vt100" && env.TERM !== "dumb",
  };
}

const FEED_LINES = 5;

function clip(s: string, width: number): string {
  // Control characters from data never reach the terminal.
  const clean = terminalLine(s);
  return clean.length > width ? clean.slice(0, width - 1) + (width > 1 ? "~" : "") : clean;
}

export function statusText(s: StatusLine | undefined): string {
  if (!s) return "PAIO | starting...";
  const temp = s.temperature !== undefined ? ` | ${Math.round(s.temperature)}C` : "";
  const failed = s.failed.length ? ` | FAILED: ${s.failed.join(",")}` : " | no failed units";
  return `PAIO ${s.health.toUpperCase()} | CPU ${s.cpu}% | MEM ${s.memory}%${temp}${failed} | mode ${s.mode}`;
}

/** What the console hands over when it leaves for a shell, and gets back after it. */
export interface ConsoleState {
  transcript: string[];
  history: string[];
}

const INTRO = "Type a request in plain words ('help' lists what I can do; 'shell' opens a shell).";
export const BACK_FROM_SHELL = "Back from the shell.";

export function App(props: { engine: Engine; look: Look; onShell: (state: ConsoleState) => Promise<void>; resumed?: ConsoleState; pollMs?: number }) {
  const { engine, look } = props;
  const { exit, suspendTerminal } = useApp();
  // The conversation so far, kept in a ref as well so that the shell can take it along.
  const transcriptRef = useRef<string[]>(props.resumed ? [...props.resumed.transcript, BACK_FROM_SHELL] : [INTRO]);
  // The shell gets the terminal to itself. On the device the console process
  // ends and console-ui runs the shell, then starts the console again with
  // this state (two readers of one terminal would fight over its input).
  const openShell = async () => {
    const state = { transcript: transcriptRef.current, history: history.current };
    if (typeof suspendTerminal === "function") await suspendTerminal(() => props.onShell(state));
    else await props.onShell(state);
  };
  const [status, setStatus] = useState<StatusLine>();
  const [feed, setFeed] = useState<string[]>([]);
  const [transcript, setTranscript] = useState<string[]>(transcriptRef.current);
  const [line, setLine] = useState("");
  const [confirm, setConfirmState] = useState<string>();
  // The open question, in a ref as well: a line typed right after an answer is read by a
  // handler from before the next render, and must not be taken as a second answer.
  const confirmRef = useRef<string | undefined>(undefined);
  const setConfirm = (q: string | undefined) => {
    confirmRef.current = q;
    setConfirmState(q);
  };
  const [busy, setBusy] = useState(false);
  const history = useRef<string[]>(props.resumed?.history ?? []);
  const histPos = useRef(-1);

  useEffect(() => {
    let alive = true;
    let t: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      let wait = props.pollMs ?? 3000;
      try {
        const s = await engine.status();
        if (alive) setStatus(s);
        // The strip's figures change once per tick of the agent: asking more often shows nothing new and costs the agent CPU.
        if (s.tickMs) wait = Math.max(wait, s.tickMs);
      } catch {
        // keep the last status
      }
      if (alive) t = setTimeout(tick, wait);
    };
    void tick();
    let progressShown = false;
    const off = engine.onEvent((e: AgentEvent) => {
      const time = new Date(e.time).toISOString().slice(11, 19);
      // A long call's progress takes one line, updated in place, so it does not push the other events out.
      const replace = e.event === "progress" && progressShown;
      progressShown = e.event === "progress";
      setFeed((f) => [...(replace ? f.slice(0, -1) : f), `${time} ${e.event}: ${e.text}`].slice(-FEED_LINES));
    });
    return () => {
      alive = false;
      clearTimeout(t);
      off();
    };
  }, [engine]);

  const say = (lines: string[]) => {
    transcriptRef.current = [...transcriptRef.current, ...lines].slice(-200);
    setTranscript(transcriptRef.current);
  };

  const submit = async (text: string) => {
    const trimmed = text.trim();
    if (!trimmed) return;
    // A passphrase typed here is shown, kept and recalled only as ********.
    const shown = maskSecrets(trimmed);
    history.current = [...history.current.filter((h) => h !== shown), shown].slice(-50);
    histPos.current = -1;
    say([`> ${shown}`]);
    if (confirmRef.current) {
      const yes = /^(y|yes)$/i.test(trimmed);
      setConfirm(undefined);
      setBusy(true);
      const r = await engine.answer(yes);
      setBusy(false);
      say(r.lines);
      if (r.confirm) setConfirm(r.confirm);
      return;
    }
    if (/^(shell|!)$/i.test(trimmed)) {
      await openShell();
      say([BACK_FROM_SHELL]);
      return;
    }
    if (/^(quit|exit)$/i.test(trimmed)) {
      exit();
      return;
    }
    setBusy(true);
    try {
      const r = await engine.submit(trimmed);
      say(r.lines);
      if (r.confirm) setConfirm(r.confirm);
    } catch (e) {
      say([`! ${(e as Error).message}`]);
    } finally {
      setBusy(false);
    }
  };

  useInput((input, key) => {
    if (key.ctrl && input === "\\") {
      void openShell().then(() => say([BACK_FROM_SHELL]));
      return;
    }
    if (key.upArrow || key.downArrow) {
      const h = history.current;
      if (h.length === 0) return;
      let pos = histPos.current === -1 ? h.length : histPos.current;
      pos = key.upArrow ? Math.max(0, pos - 1) : Math.min(h.length, pos + 1);
      histPos.current = pos === h.length ? -1 : pos;
      setLine(pos === h.length ? "" : h[pos]!);
      return;
    }
    if (key.return) {
      const text = line;
      setLine("");
      void submit(text);
      return;
    }
    if (key.backspace || key.delete) {
      setLine((l) => l.slice(0, -1));
      return;
    }
    if (key.ctrl || key.meta || key.escape || key.tab) return;
    // A paste or a fast serial line can bring several characters, Enter included, in one chunk.
    const parts = input.split(/\r\n|\r|\n/);
    if (parts.length > 1) {
      const first = line + parts[0];
      setLine(parts[parts.length - 1]!);
      void (async () => {
        await submit(first);
        for (const p of parts.slice(1, -1)) await submit(p);
      })();
      return;
    }
    setLine((l) => (l + input).replace(/[\x00-\x1f\x7f]/g, ""));
  });

  const width = look.columns;
  const rule = (look.unicode ? "\u2500" : "-").repeat(width);
  const chatRows = Math.max(3, look.rows - FEED_LINES - 6);
  const shown = transcript.flatMap((t) => {
    const out: string[] = [];
    for (let i = 0; i < t.length || i === 0; i += width) out.push(t.slice(i, i + width));
    return out;
  }).slice(-chatRows);
  const prompt = confirm ? `${confirm} ` : busy ? "... " : "> ";
  const health = status?.health ?? "";
  const stripColour = !look.colour ? undefined : health === "ok" ? "green" : health === "failing" ? "red" : "yellow";
  return (
    <Box flexDirection="column" width={width}>
      <Text color={stripColour} inverse={look.colour} wrap="truncate">{clip(statusText(status), width)}</Text>
      <Text wrap="truncate">{rule}</Text>
      {Array.from({ length: FEED_LINES }, (_, i) => (
        <Text key={`f${i}`} dimColor={look.colour} wrap="truncate">{clip(feed[i] ?? (i === 0 && feed.length === 0 ? "(no agent events yet)" : " "), width)}</Text>
      ))}
      <Text wrap="truncate">{rule}</Text>
      {Array.from({ length: chatRows }, (_, i) => (
        <Text key={`c${i}`} wrap="truncate">{clip(shown[i] ?? " ", width)}</Text>
      ))}
      <Text wrap="truncate">{rule}</Text>
      <Text wrap="truncate">{clip(prompt + line, width)}</Text>
    </Box>
  );
}
