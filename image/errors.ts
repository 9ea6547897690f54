/** An error the user can fix: the message says what is wrong and what to do. */
export class BuildError extends Error {
  override name = "BuildError";
}

/** Runs a command; throws BuildError with its output when it fails. */
export function run(cmd: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}): string {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...opts.env })) if (v !== undefined) env[k] = v;
  let proc;
  try {
    proc = Bun.spawnSync(cmd, { cwd: opts.cwd, env, stdout: "pipe", stderr: "pipe" });
  } catch (e) {
    throw new BuildError(`cannot run ${cmd[0]}: ${(e as Error).message}; run 'make deps' to install the host tools`);
  }
  if (proc.exitCode !== 0) {
    const out = (proc.stderr.toString() + proc.stdout.toString()).trim().split("\n").slice(-15).join("\n");
    throw new BuildError(`command failed (exit ${proc.exitCode}): ${cmd.join(" ")}\n${out}`);
  }
  return proc.stdout.toString();
}

/** Throws a BuildError naming the missing host tools and how to get them. */
export function requireTools(tools: string[]): void {
  const missing = tools.filter((t) => !Bun.which(t, { PATH: `${process.env.PATH}:/usr/sbin:/sbin` }));
  if (missing.length > 0) {
    throw new BuildError(`missing host tools: ${missing.join(", ")}; run 'make deps' to install them`);
  }
}
