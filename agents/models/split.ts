// Which recorded scenarios a model or a rule may be built or tuned from, and
// which are kept for evaluation only (agents/models/evaluate.ts). Split by
// whole scenario (name and seed), never by row or window: a held-out trace
// shares no minute with a training one. The scenarios themselves are
// defined apart, with their recorder (tests/traces/scenarios.ts);
// tests/unit/traces.test.ts checks that the two lists do not overlap and
// that together they name every scenario.

export const TRAIN_SCENARIOS: readonly string[] = ["leaks-a", "cpu-a", "process-a", "mixed-a", "mixed-b"];

export const HELD_OUT_SCENARIOS: readonly string[] = ["leaks-b", "storage-a", "mixed-c", "sample"];
