import { defineConfig } from "vitest/config";

// `make test-arm64`: the long arm64 tests (the Raspberry Pi image flashed and booted),
// after the whole end-to-end suite on QEMU virt.
export default defineConfig({
  test: {
    pool: "threads",
    include: ["tests/arm64/**/*.test.ts"],
    testTimeout: 2_400_000,
    hookTimeout: 600_000,
    fileParallelism: false,
    env: { ORT_DISABLE_TELEMETRY: "1" },
  },
});
