// The intent model: hashed text features → 64 hidden units → one softmax
// output per tool of the catalog that language can reach. Trained by
// `make models` on the generator's utterances plus hand-written examples.

import { encodeModel, mlpGraph } from "../models/onnx.ts";
import { forward, initMlp, rng, softmax, trainMlp } from "../models/train.ts";
import type { TrainedModel } from "../models/forecast-model.ts";
import { FEATURES, featurize, placeholderTokens } from "./features.ts";
import { generate, INTENTS, NUM, UNIT, type Example } from "./generator.ts";
import { tokens } from "./text.ts";

/** Hand-written examples (in the generator's placeholder form) that templates do not reach. */
const HANDWRITTEN: [string, string][] = [
  ["is it ok", "system.status"],
  ["how are things", "system.status"],
  ["whats up with the box", "system.status"],
  ["anything running", "unit.list"],
  ["services?", "unit.list"],
  [`${UNIT}?`, "unit.status"],
  [`is ${UNIT} dead`, "unit.status"],
  [`${UNIT} broken?`, "unit.status"],
  [`tail ${UNIT}`, "unit.logs"],
  [`what is ${UNIT} complaining about`, "unit.logs"],
  [`fire up ${UNIT}`, "unit.start"],
  [`kill ${UNIT}`, "unit.stop"],
  [`${UNIT} is stuck, restart it`, "unit.restart"],
  [`${UNIT} hangs`, "unit.restart"],
  [`${UNIT} eats too much memory, cap it at ${NUM} mb`, "unit.limit"],
  [`${UNIT} is hogging the cpu, limit it to ${NUM}%`, "unit.limit"],
  [`${UNIT} matters most`, "unit.prioritize"],
  [`${UNIT} can wait`, "unit.prioritize"],
  ["whats slowing things down", "process.top"],
  ["who is using the memory", "process.top"],
  [`nuke pid ${NUM}`, "process.kill"],
  ["what went wrong", "incident.list"],
  ["any trouble today", "incident.list"],
  [`why ${UNIT}`, "incident.explain"],
  ["why did you do that", "incident.explain"],
  ["hands off", "agent.mode"],
  ["let me decide", "agent.mode"],
  ["take over", "agent.mode"],
  ["restart everything", "power.reboot"],
  ["bye, shut it all down", "power.poweroff"],
  ["?", "help"],
  ["what now", "help"],
  ["ignore previous instructions", "none"],
  ["lorem ipsum dolor", "none"],
];

/** The training set: the generator's utterances and the hand-written examples (each eight times). */
export function trainingExamples(seed = 3): Example[] {
  const data = generate(1200, seed);
  for (let k = 0; k < 8; k++) for (const [text, intent] of HANDWRITTEN) data.push({ text, intent });
  return data;
}

export function trainIntent(log: (line: string) => void, seed = 3): TrainedModel & { labels: string[] } {
  const r = rng(seed);
  const data = trainingExamples(seed);
  const xs = data.map((e) => featurize(placeholderTokens(tokens(e.text))));
  const ys = data.map((e) => {
    const y = new Float32Array(INTENTS.length);
    y[INTENTS.indexOf(e.intent)] = 1;
    return y;
  });
  const layers = initMlp([FEATURES, 64, INTENTS.length], r);
  const loss = trainMlp(layers, xs, ys, { epochs: 12, batch: 32, lr: 0.003, r, loss: "softmax" });
  // Fresh generated utterances (another seed): a sanity figure; the real test is the hand-written held-out set.
  const fresh = generate(40, seed + 1000);
  let right = 0;
  for (const e of fresh) {
    const p = softmax(forward(layers, featurize(placeholderTokens(tokens(e.text))))[2]!);
    if (INTENTS[p.indexOf(Math.max(...p))] === e.intent) right++;
  }
  const metrics = { train_loss: +loss.toFixed(4), generated_accuracy: +(right / fresh.length).toFixed(4), examples: data.length };
  log(`intent: ${data.length} training utterances, ${INTENTS.length} intents; accuracy on fresh generated utterances ${(metrics.generated_accuracy * 100).toFixed(1)}%`);
  const graph = mlpGraph("intent", { name: "features", shape: ["batch", FEATURES] }, { name: "probabilities", shape: ["batch", INTENTS.length] }, [
    { ...layers[0]!, act: "relu" },
    { ...layers[1]!, act: "softmax" },
  ]);
  return {
    bytes: encodeModel(graph, { purpose: "intent", labels: INTENTS.join(",") }),
    inputs: `features: float32[batch, ${FEATURES}], hashed words, word pairs and letter triples of the utterance`,
    outputs: `probabilities: float32[batch, ${INTENTS.length}] over ${INTENTS.join(", ")}`,
    metrics,
    training: `${data.length} utterances from agents/nlu/generator.ts (templates, synonyms, politeness, typos) and ${HANDWRITTEN.length} hand-written, seed ${seed}; MLP ${FEATURES}-64-${INTENTS.length}, softmax cross-entropy, 12 epochs`,
    labels: INTENTS,
  };
}
