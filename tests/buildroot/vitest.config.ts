import { defineConfig } from "vitest/config";

// `make test-buildroot`: the offline Buildroot build's image, booted in QEMU.
export default defineConfig({
  test: {
    pool: "threads",
    include: ["tests/buildroot/**/*.test.ts"],
    testTimeout: 900_000,
    hookTimeout: 900_000,
    fileParallelism: false,
    env: { ORT_DISABLE_TELEMETRY: "1" },
  },
});
