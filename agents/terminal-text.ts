// Text from data (log lines, process and network names, a language model's
// answer) on a terminal: every control character becomes '?', so a line can
// neither move the cursor, clear the screen, set the window title nor
// reorder what is shown around it. C0 (a shown row is one line, so tab and
// newline too), DEL, C1 (some terminals take U+009B as ESC [), the line and
// paragraph separators, and the bidirectional embeddings, overrides and isolates.

const UNSAFE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

export function terminalLine(s: string): string {
  return s.replace(UNSAFE, "?");
}
