import { defineConfig } from "vitest/config";

// Tests run on Bun (`bun --bun vitest run`), the runtime of the image. Vitest's
// process pool relies on Node's IPC channel, which Bun lacks, so tests use threads.
export default defineConfig({
  test: {
    pool: "threads",
    include: ["tests/**/*.test.ts"],
    testTimeout: 30_000,
    // Tests that boot QEMU share two cores: one file at a time keeps boots fast and timings honest.
    fileParallelism: false,
  },
});
