// The console's input, before ink reads it. Ink takes ESC [200~ as the start
// of a bracketed paste and holds everything after it until ESC [201~: one
// stray start marker (line noise on a serial line, a paste cut short, a
// hostile sender) would leave the console deaf, keeping every key from then
// on. The console never turns bracketed paste on, so the markers mean
// nothing here: they are taken out, and what was pasted arrives as typing
// (the app handles several lines in one read).

import { PassThrough } from "node:stream";

const MARKERS = ["\x1b[200~", "\x1b[201~"];
/** How long the start of a possible marker at the end of a read waits for the rest (ink waits as long for an escape sequence). */
const HOLD_MS = 20;

export class PasteMarks {
  private tail = "";

  /** The read without paste markers; a possible start of one at its end is kept for the next read. */
  push(chunk: string): string {
    let s = this.tail + chunk;
    this.tail = "";
    for (const m of MARKERS) s = s.split(m).join("");
    for (let k = Math.min(MARKERS[0]!.length - 1, s.length); k > 0; k--) {
      const end = s.slice(-k);
      if (MARKERS.some((m) => m.startsWith(end))) {
        this.tail = end;
        return s.slice(0, -k);
      }
    }
    return s;
  }

  /** What was kept, when no more came (a lone Escape key). */
  flush(): string {
    const t = this.tail;
    this.tail = "";
    return t;
  }
}

type Keyboard = PassThrough & { isTTY: boolean; setRawMode: (on: boolean) => Keyboard; ref: () => void; unref: () => void };

/** A stream for ink's stdin: `tty` with the paste markers taken out; raw mode, ref and unref go to `tty`. */
export function consoleInput(tty: NodeJS.ReadStream): Keyboard {
  const out = new PassThrough() as Keyboard;
  const marks = new PasteMarks();
  let timer: ReturnType<typeof setTimeout> | undefined;
  tty.setEncoding("utf8");
  tty.on("data", (chunk: string) => {
    clearTimeout(timer);
    const s = marks.push(chunk);
    if (s) out.write(s);
    timer = setTimeout(() => {
      const held = marks.flush();
      if (held) out.write(held);
    }, HOLD_MS);
  });
  tty.pause();
  out.isTTY = tty.isTTY;
  out.setRawMode = (on: boolean) => {
    tty.setRawMode?.(on);
    // Raw mode off is ink handing the terminal over (to a shell): stop reading it meanwhile.
    if (on) tty.resume();
    else tty.pause();
    return out;
  };
  out.ref = () => tty.ref();
  out.unref = () => tty.unref();
  return out;
}
