// Line-level mutation of a text file, for the configuration fuzzers: one to
// three edits from lines dropped, doubled, swapped or cut off, a junk string
// inserted, or one character flipped. `r` is a seeded random source, so a run
// is replayed by its seed; `junk` is what the file's format finds hostile.

export function mutate(text: string, r: () => number, junk: readonly string[]): string {
  let lines = text.split("\n");
  const n = 1 + Math.floor(r() * 3);
  for (let k = 0; k < n; k++) {
    const i = Math.floor(r() * lines.length);
    const j = Math.floor(r() * lines.length);
    const line = lines[i] ?? "";
    switch (Math.floor(r() * 6)) {
      case 0: lines.splice(i, 1); break;
      case 1: lines.splice(i, 0, line); break;
      case 2: [lines[i], lines[j]] = [lines[j] ?? "", line]; break;
      case 3: {
        const p = Math.floor(r() * (line.length + 1));
        lines[i] = line.slice(0, p) + junk[Math.floor(r() * junk.length)] + line.slice(p);
        break;
      }
      case 4: {
        const p = Math.floor(r() * line.length);
        lines[i] = line.slice(0, p) + String.fromCharCode(32 + Math.floor(r() * 95)) + line.slice(p + 1);
        break;
      }
      default: lines = lines.slice(0, Math.floor(r() * lines.length));
    }
  }
  return lines.join("\n");
}
