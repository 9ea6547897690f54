// The YAML that cloud-init's NoCloud files use (what Raspberry Pi Imager
// writes as user-data and network-config): block mappings and sequences,
// plain, single- and double-quoted scalars, block scalars (| and >), flow
// lists and maps on one line, and comments. Everything else YAML has
// (anchors, aliases, tags, several documents, values continued on the next
// line, multi-line quoted strings) is refused with the line and what to write
// instead, so a hostile file can neither expand nor recurse without bound.
//
// Scalars stay strings (or null): "true", "2" and "0755" are what the file
// says, and the reader decides what a field means.

export type YamlValue = string | null | YamlValue[] | { [key: string]: YamlValue };
export type YamlMap = { [key: string]: YamlValue };

export class YamlError extends Error {
  constructor(readonly line: number, message: string) {
    super(message);
  }
}

/** How deep blocks and flow collections may nest; cloud-init files need five or six levels. */
export const MAX_DEPTH = 32;

interface Line {
  /** 1-based line number in the file. */
  no: number;
  indent: number;
  /** The text after the indentation, comment removed, trailing spaces trimmed. */
  text: string;
  /** The raw line, for block scalars. */
  raw: string;
}

/** Where a comment starts: a '#' at the start or after a space, outside quotes; -1 if none. */
function commentAt(text: string): number {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (quote === '"' && c === "\\") i++;
      else if (c === quote) {
        if (quote === "'" && text[i + 1] === "'") i++;
        else quote = undefined;
      }
      continue;
    }
    if (c === "#" && (i === 0 || text[i - 1] === " " || text[i - 1] === "\t")) return i;
    // A quote opens a quoted scalar only where a scalar can start.
    if ((c === '"' || c === "'") && (i === 0 || /[\s:,[{-]/.test(text[i - 1]!))) quote = c;
  }
  return -1;
}

function scanLines(source: string): { lines: Line[]; raw: string[] } {
  const raw = source.replace(/^\uFEFF/, "").split(/\r?\n/);
  const lines: Line[] = [];
  let started = false;
  for (let i = 0; i < raw.length; i++) {
    const r = raw[i]!;
    const no = i + 1;
    const ws = /^[ \t]*/.exec(r)![0];
    const body = r.slice(ws.length);
    if (body === "" || body.startsWith("#")) continue;
    if (ws.includes("\t")) throw new YamlError(no, "a tab in the indentation: YAML indents with spaces only; replace the tab with spaces");
    if (/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(r)) throw new YamlError(no, "a control character; save the file as plain text");
    if (body.startsWith("%")) {
      if (started) throw new YamlError(no, "a directive inside the document; remove it");
      continue;
    }
    if (/^---(\s|$)/.test(body) && ws === "") {
      if (started) throw new YamlError(no, "a second YAML document ('---'); put everything in one document");
      started = true;
      if (body.slice(3).trim() && !body.slice(3).trim().startsWith("#")) throw new YamlError(no, "content on the '---' line; start it on the next line");
      continue;
    }
    if (/^\.\.\.(\s|$)/.test(body) && ws === "") break;
    started = true;
    const c = commentAt(body);
    const text = (c >= 0 ? body.slice(0, c) : body).trimEnd();
    if (text === "") continue;
    lines.push({ no, indent: ws.length, text, raw: r });
  }
  return { lines, raw };
}

class Parser {
  private i = 0;
  constructor(private lines: Line[], private raw: string[]) {}

  parse(): YamlValue {
    if (this.lines.length === 0) return null;
    const first = this.lines[0]!;
    const v = this.block(first.indent, 0);
    if (this.i < this.lines.length) {
      const l = this.lines[this.i]!;
      const why =
        l.indent > first.indent ? "unexpected indentation (a value continued on the next line? put it on one line, in quotes)"
        : l.indent < first.indent ? "this line is indented less than the first line of the file; align the top-level keys"
        : "a list item and a key at the same top level; the file is either a set of keys or a list";
      throw new YamlError(l.no, why);
    }
    return v;
  }

  private peek(): Line | undefined {
    return this.lines[this.i];
  }

  private block(indent: number, depth: number): YamlValue {
    if (depth > MAX_DEPTH) throw new YamlError(this.peek()!.no, `nested more than ${MAX_DEPTH} levels deep; this is not a cloud-init file`);
    const l = this.peek()!;
    if (isSeqItem(l.text)) return this.sequence(indent, depth);
    if (keyOf(l.text, l.no)) return this.mapping(indent, depth);
    // A lone scalar as a whole block.
    this.i++;
    return scalar(l.text, l.no, depth);
  }

  private sequence(indent: number, depth: number): YamlValue[] {
    const out: YamlValue[] = [];
    for (let l = this.peek(); l && l.indent === indent && isSeqItem(l.text); l = this.peek()) {
      const rest = l.text.slice(1);
      const content = rest.trimStart();
      if (content === "") {
        this.i++;
        const next = this.peek();
        out.push(next && next.indent > indent ? this.block(next.indent, depth + 1) : null);
        continue;
      }
      const column = indent + 1 + (rest.length - content.length);
      if (isSeqItem(content) || keyOf(content, l.no)) {
        // "- key: value" or "- - item": the item is a block that starts on this line at its content column.
        this.lines[this.i] = { ...l, indent: column, text: content };
        out.push(this.block(column, depth + 1));
        continue;
      }
      this.i++;
      out.push(this.inlineValue(content, l, indent, depth));
    }
    this.checkStray(indent);
    return out;
  }

  private mapping(indent: number, depth: number): YamlMap {
    const out: YamlMap = Object.create(null) as YamlMap;
    for (let l = this.peek(); l && l.indent === indent; l = this.peek()) {
      if (isSeqItem(l.text)) throw new YamlError(l.no, "a list item where a key was expected; indent the list under its key");
      const k = keyOf(l.text, l.no);
      if (!k) throw new YamlError(l.no, "expected 'key: value'; a value continued on the next line must be on one line, in quotes");
      if (Object.prototype.hasOwnProperty.call(out, k.key)) throw new YamlError(l.no, `the key '${k.key}' appears twice; keep one`);
      this.i++;
      const rest = k.rest;
      if (rest === "") {
        const next = this.peek();
        if (next && next.indent > indent) out[k.key] = this.block(next.indent, depth + 1);
        else if (next && next.indent === indent && isSeqItem(next.text)) out[k.key] = this.sequence(indent, depth + 1);
        else out[k.key] = null;
        continue;
      }
      out[k.key] = this.inlineValue(rest, l, indent, depth);
    }
    this.checkStray(indent);
    return out;
  }

  /** A value on the same line as its key or dash: a scalar, a flow collection, or a block scalar header. */
  private inlineValue(text: string, l: Line, indent: number, depth: number): YamlValue {
    const header = /^([|>])([+-]?)([1-9]?)([+-]?)$/.exec(text);
    if (header) return this.blockScalar(header[1] as "|" | ">", header[2] || header[4] || "", header[3] ? indent + Number(header[3]) : undefined, l, indent);
    const v = scalar(text, l.no, depth);
    const next = this.peek();
    if (next && next.indent > indent) {
      throw new YamlError(next.no, "unexpected indentation: a value continued on the next line is not supported; put the whole value on one line, in quotes");
    }
    return v;
  }

  private blockScalar(style: "|" | ">", chomp: string, explicit: number | undefined, header: Line, parentIndent: number): string {
    // The block's lines are the raw lines after the header that are blank or indented more than the parent.
    const body: string[] = [];
    let n = header.no; // raw index of the next line (0-based)
    let indent = explicit;
    for (; n < this.raw.length; n++) {
      const r = this.raw[n]!;
      const ws = /^ */.exec(r)![0].length;
      if (r.trim() === "") {
        body.push("");
        continue;
      }
      if (ws <= parentIndent) break;
      indent ??= ws;
      if (ws < indent) break;
      body.push(r.slice(indent));
    }
    // Skip the parsed lines that fall inside the block.
    while (this.peek() && this.peek()!.no <= n) this.i++;
    let trailing = 0;
    while (body.length && body[body.length - 1] === "") {
      body.pop();
      trailing++;
    }
    let text = style === "|" ? body.join("\n") : body.map((x) => (x === "" ? "\n" : x)).join(" ").replace(/ ?\n ?/g, "\n");
    if (chomp !== "-" && body.length) text += "\n";
    if (chomp === "+") text += "\n".repeat(trailing);
    return text;
  }

  private checkStray(indent: number): void {
    const l = this.peek();
    if (l && l.indent > indent) throw new YamlError(l.no, "unexpected indentation; align this line with the keys above it, or put a value continued from the line above on one line, in quotes");
  }
}

function isSeqItem(text: string): boolean {
  return text === "-" || text.startsWith("- ");
}

/** "key: rest" (the key plain or quoted); undefined when the line is not a mapping entry. */
function keyOf(text: string, no: number): { key: string; rest: string } | undefined {
  if (text.startsWith("? ")) throw new YamlError(no, "complex keys ('? ') are not supported; write 'key: value'");
  if (text[0] === '"' || text[0] === "'") {
    const q = quoted(text, 0, no);
    const after = text.slice(q.end);
    const m = /^\s*:(\s+|$)/.exec(after);
    if (!m) return undefined;
    return { key: q.value, rest: after.slice(m[0].length).trim() };
  }
  if (text[0] === "[" || text[0] === "{") return undefined;
  const m = /^([^#]*?)\s*:(\s+|$)/.exec(text);
  if (!m || m[1] === "") return undefined;
  const key = m[1]!;
  if (/^[&*!|>%@`]/.test(key)) throw new YamlError(no, `the key '${key}' starts with '${key[0]}': anchors, aliases and tags are not supported; write a plain key`);
  return { key, rest: text.slice(m[0].length).trim() };
}

/** A quoted scalar starting at text[start]; it must end on the same line. */
function quoted(text: string, start: number, no: number): { value: string; end: number } {
  const q = text[start]!;
  let out = "";
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i]!;
    if (q === "'") {
      if (c === "'") {
        if (text[i + 1] === "'") {
          out += "'";
          i++;
          continue;
        }
        return { value: out, end: i + 1 };
      }
      out += c;
      continue;
    }
    if (c === '"') return { value: out, end: i + 1 };
    if (c !== "\\") {
      out += c;
      continue;
    }
    const e = text[++i];
    const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", "0": "\0", '"': '"', "\\": "\\", "/": "/", " ": " ", a: "\x07", b: "\b", e: "\x1b", f: "\f", v: "\v" };
    if (e !== undefined && simple[e] !== undefined) {
      out += simple[e];
      continue;
    }
    const hex = e === "x" ? 2 : e === "u" ? 4 : e === "U" ? 8 : 0;
    const digits = text.slice(i + 1, i + 1 + hex);
    if (!hex || !new RegExp(`^[0-9a-fA-F]{${hex}}$`).test(digits)) throw new YamlError(no, `an unknown escape '\\${e ?? ""}' in a double-quoted string; write '\\\\' for a backslash`);
    const cp = parseInt(digits, 16);
    if (cp > 0x10ffff) throw new YamlError(no, `the escape '\\${e}${digits}' is not a character`);
    out += String.fromCodePoint(cp);
    i += hex;
  }
  throw new YamlError(no, `a ${q === '"' ? "double" : "single"}-quoted string does not end on its line; close the quote (strings over several lines are not supported)`);
}

/** A scalar or a one-line flow collection: the whole text must be used. */
function scalar(text: string, no: number, depth: number): YamlValue {
  const c = text[0]!;
  if (c === '"' || c === "'") {
    const q = quoted(text, 0, no);
    if (text.slice(q.end).trim() !== "") throw new YamlError(no, "text after a quoted string; quote the whole value");
    return q.value;
  }
  if (c === "[" || c === "{") {
    const f = flow(text, 0, no, depth + 1);
    if (text.slice(f.end).trim() !== "") throw new YamlError(no, `text after the closing '${c === "[" ? "]" : "}"}'`);
    return f.value;
  }
  return plain(text, no);
}

function plain(text: string, no: number): string | null {
  const c = text[0]!;
  if (c === "&" || c === "*") throw new YamlError(no, `'${c}' starts an ${c === "&" ? "anchor" : "alias"}, which is not supported; write the value itself`);
  if (c === "!") throw new YamlError(no, "tags ('!') are not supported; write the value itself (quote it if it starts with '!')");
  if (c === "@" || c === "`") throw new YamlError(no, `a value cannot start with '${c}' in YAML; quote it`);
  if (c === "|" || c === ">") throw new YamlError(no, `'${c}' starts a block scalar only at the end of a 'key:' line; quote the value`);
  if (/^(~|null|Null|NULL)$/.test(text)) return null;
  return text;
}

/** A flow collection ([a, b] or {k: v}) starting at text[start], on one line. */
function flow(text: string, start: number, no: number, depth: number): { value: YamlValue; end: number } {
  if (depth > MAX_DEPTH) throw new YamlError(no, `nested more than ${MAX_DEPTH} levels deep`);
  const open = text[start]!;
  const close = open === "[" ? "]" : "}";
  const list: YamlValue[] = [];
  const map: YamlMap = Object.create(null) as YamlMap;
  let i = start + 1;
  const skip = () => {
    while (text[i] === " ") i++;
  };
  const item = (stops: string): { value: YamlValue; end: number } => {
    skip();
    const c = text[i];
    if (c === undefined) throw new YamlError(no, `a '${open}' without its '${close}' on the same line; flow collections over several lines are not supported`);
    if (c === "[" || c === "{") return flow(text, i, no, depth + 1);
    if (c === '"' || c === "'") return quoted(text, i, no);
    let j = i;
    while (j < text.length && !stops.includes(text[j]!) && !(text[j] === ":" && (text[j + 1] === " " || text[j + 1] === undefined || stops.includes(text[j + 1]!)) && open === "{")) j++;
    const raw = text.slice(i, j).trim();
    return { value: raw === "" ? null : plain(raw, no), end: j };
  };
  skip();
  if (text[i] === close) return { value: open === "[" ? list : map, end: i + 1 };
  for (;;) {
    const k = item(open === "[" ? ",]" : ",}");
    i = k.end;
    skip();
    if (open === "{") {
      if (typeof k.value !== "string") throw new YamlError(no, "a key in { } must be a plain or quoted string");
      if (text[i] !== ":") throw new YamlError(no, "expected ':' after a key in { }");
      i++;
      const v = item(",}");
      i = v.end;
      skip();
      if (Object.prototype.hasOwnProperty.call(map, k.value)) throw new YamlError(no, `the key '${k.value}' appears twice; keep one`);
      map[k.value] = v.value;
    } else {
      list.push(k.value);
    }
    if (text[i] === ",") {
      i++;
      skip();
      if (text[i] === close) return { value: open === "[" ? list : map, end: i + 1 };
      continue;
    }
    if (text[i] === close) return { value: open === "[" ? list : map, end: i + 1 };
    throw new YamlError(no, `a '${open}' without its '${close}' on the same line; flow collections over several lines are not supported`);
  }
}

/** Parses the YAML subset; throws YamlError with the line. */
export function parseYaml(source: string): YamlValue {
  const { lines, raw } = scanLines(source);
  return new Parser(lines, raw).parse();
}

export function isMap(v: YamlValue | undefined): v is YamlMap {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** YAML 1.1 booleans, as netplan and cloud-init read them; undefined when the text is none. */
export function yamlBool(v: YamlValue | undefined): boolean | undefined {
  if (typeof v !== "string") return undefined;
  if (/^(true|yes|on|y)$/i.test(v)) return true;
  if (/^(false|no|off|n)$/i.test(v)) return false;
  return undefined;
}
