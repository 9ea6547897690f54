// A tiny writer for the "newc" cpio format the kernel unpacks as initramfs.
// Writing it ourselves lets the archive hold device nodes (/dev/console)
// without root privileges, with fixed owners and times for reproducibility.

export type CpioEntry =
  | { path: string; type: "dir"; mode: number }
  | { path: string; type: "file"; mode: number; data: Uint8Array }
  | { path: string; type: "symlink"; target: string }
  | { path: string; type: "char"; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

function pad4(len: number): Uint8Array {
  return new Uint8Array((4 - (len % 4)) % 4);
}

/** Builds a newc archive; entries are written in the given order. */
export function cpioArchive(entries: CpioEntry[], mtime: number): Uint8Array<ArrayBuffer> {
  const chunks: Uint8Array[] = [];
  const enc = new TextEncoder();
  let ino = 1;
  const add = (name: string, mode: number, data: Uint8Array, rdevMajor = 0, rdevMinor = 0) => {
    const nameBytes = enc.encode(name + "\0");
    const fields = [
      ino++, mode, 0 /* uid */, 0 /* gid */, mode & S_IFDIR ? 2 : 1, mtime, data.length,
      0, 0, rdevMajor, rdevMinor, nameBytes.length, 0 /* check */,
    ];
    const header = enc.encode("070701" + fields.map(hex8).join(""));
    chunks.push(header, nameBytes, pad4(header.length + nameBytes.length), data, pad4(data.length));
  };
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, "");
    switch (e.type) {
      case "dir":
        add(name, S_IFDIR | e.mode, new Uint8Array());
        break;
      case "file":
        add(name, S_IFREG | e.mode, e.data);
        break;
      case "symlink":
        add(name, S_IFLNK | 0o777, enc.encode(e.target));
        break;
      case "char":
        add(name, S_IFCHR | e.mode, new Uint8Array(), e.major, e.minor);
        break;
    }
  }
  ino = 0;
  add("TRAILER!!!", 0, new Uint8Array());
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
