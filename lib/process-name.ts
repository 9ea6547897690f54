// Every PAIO program runs on the same Bun binary, so the kernel would call
// each of them "bun": ps, top and the agent's own process list (process.top)
// would show three processes of that name and no way to tell which is which.
// Each program names itself at start through /proc/self/comm, the kernel's
// short name of the calling thread (Bun runs JavaScript on the main thread,
// whose name is the process's), so it shows as paio-supervisor, paio-agent,
// paio-console or paio-network. The command line (/proc/PID/cmdline) is left
// as it is.

import { writeFileSync } from "node:fs";

/** The kernel keeps at most 15 bytes of a task's name. */
export const MAX_NAME = 15;

/**
 * Names this process as the kernel shows it (/proc/PID/comm, ps, top).
 * Returns an error sentence where it cannot (no /proc), else null: a name is
 * a courtesy, never a reason to stop.
 */
export function nameProcess(name: string): string | null {
  if (!new RegExp(`^[a-z0-9-]{1,${MAX_NAME}}$`).test(name)) throw new Error(`process name '${name}': use 1 to ${MAX_NAME} of a-z, 0-9 and '-'`);
  try {
    writeFileSync("/proc/self/comm", name);
    return null;
  } catch (e) {
    return `could not name the process '${name}': ${(e as Error).message}`;
  }
}
