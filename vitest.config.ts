import { defineConfig } from "vitest/config";

// Tests run on Bun (`bun --bun vitest run`), the runtime of the image. Vitest's
// process pool relies on Node's IPC channel, which Bun lacks, so tests use threads.
export default defineConfig({
  test: {
    pool: "threads",
    include: ["tests/**/*.test.ts", "tests/**/*.test.tsx"],
    // The full Buildroot build and boot is its own target (make test-buildroot); so are
    // the long arm64 tests (make test-arm64).
    exclude: ["**/node_modules/**", "tests/buildroot/**", "tests/arm64/**"],
    // Generous: tests that run inside a TCG guest are slow on a busy two-core machine.
    testTimeout: 120_000,
    // Tests that boot QEMU share two cores: one file at a time keeps boots fast and timings honest.
    fileParallelism: false,
    // onnxruntime would otherwise write a telemetry database under ~/.cache.
    env: { ORT_DISABLE_TELEMETRY: "1" },
  },
});
