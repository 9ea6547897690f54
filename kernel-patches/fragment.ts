// Kernel config fragments: parse "CONFIG_X=y" / "# CONFIG_X is not set"
// lines, and check that every option of a fragment landed in a final .config
// (an option whose dependencies are missing is silently dropped by kconfig).

export type Fragment = Map<string, string>;

export function parseFragment(text: string): Fragment {
  const out: Fragment = new Map();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const off = /^# (CONFIG_\w+) is not set$/.exec(line);
    if (off) {
      out.set(off[1]!, "n");
      continue;
    }
    if (!line || line.startsWith("#")) continue;
    const m = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (!m) throw new Error(`not a config line: '${line}'`);
    out.set(m[1]!, m[2]!);
  }
  return out;
}

/** Options of the fragment whose value differs in the final .config, as "CONFIG_X=want (final: got)". */
export function checkFragment(fragment: Fragment, finalConfig: string): string[] {
  const final = parseFragment(finalConfig.split("\n").filter((l) => /^CONFIG_\w+=|^# CONFIG_\w+ is not set$/.test(l.trim())).join("\n"));
  const missing: string[] = [];
  for (const [k, want] of fragment) {
    const got = final.get(k) ?? "n";
    if (got !== want) missing.push(`${k}=${want} (final: ${got === "n" ? "not set" : got})`);
  }
  return missing;
}
