// A real supervisor on the host, in a temporary directory, for tests: its
// units, its output lines, and clean-up of everything it started after each
// test (supervisor-process.ts, which the benchmarks use without vitest).
import { afterEach } from "vitest";
import { cleanUp } from "./supervisor-process.ts";

export { MAIN, alive, startSupervisor, statePids, tempDir, unit, type Sup } from "./supervisor-process.ts";

afterEach(cleanUp);
