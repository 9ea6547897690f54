// The console's input filter: bracketed-paste markers, which would make ink
// hold every later key, are taken out, even when a read cuts one in two;
// everything else (an arrow key, a lone Escape, text) passes as it came.
import { expect, test } from "vitest";
import { PassThrough } from "node:stream";
import { PasteMarks, consoleInput } from "../../agents/console/input.ts";

test("paste markers are taken out, whole or cut between reads; other keys pass unchanged", () => {
  const m = new PasteMarks();
  expect(m.push("\x1b[200~restart demo\r\x1b[201~")).toBe("restart demo\r");
  expect(m.push("abc\x1b[20")).toBe("abc");
  expect(m.push("0~list units\r")).toBe("list units\r");
  expect(m.push("\x1b[A")).toBe("\x1b[A");
  expect(m.push("x\x1b")).toBe("x");
  expect(m.flush()).toBe("\x1b");
  expect(m.push("\x1b[2J\x1b]0;t\x07")).toBe("\x1b[2J\x1b]0;t\x07");
});

test("through the stream ink reads: a stray paste start, then a line, arrives as the line; a lone Escape comes through after a moment", async () => {
  const tty = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => tty, ref: () => {}, unref: () => {} });
  const input = consoleInput(tty as never);
  input.setRawMode(true);
  const got: string[] = [];
  input.setEncoding("utf8");
  input.on("data", (s: string) => got.push(s));
  tty.write("\x1b[200~");
  tty.write("help\r");
  tty.write("\x1b");
  await Bun.sleep(100);
  expect(got.join("")).toBe("help\r\x1b");
});
