// The intent model: hashed text features → 96 hidden units → one softmax
// output per tool of the catalog that language can reach. Trained by
// `make models` on the generator's utterances plus hand-written examples.

import { encodeModel, mlpGraph } from "../models/onnx.ts";
import { forward, rng, softmax, type Layer } from "../models/train.ts";
import { trainSparseSoftmax } from "./sparse-train.ts";
import type { TrainedModel } from "../models/forecast-model.ts";
import { FEATURES, featureIndices, featurize, modelWords } from "./features.ts";
import { generate, HANDWRITTEN, INTENTS, type Example } from "./generator.ts";
import { tokens } from "./text.ts";


/** The training set: the generator's utterances and the hand-written examples (each eight times). */
export function trainingExamples(seed = 3): Example[] {
  const data = generate(2500, seed);
  for (let k = 0; k < 8; k++) for (const [text, intent] of HANDWRITTEN) data.push({ text, intent });
  return data;
}

/** How the network is shaped and trained. */
export const SHAPE = { hidden: 96, epochs: 12, batch: 64, lr: 0.005, l2: 0.0001 };

/** Trains the network on the training set; returns its layers and the final training loss. */
export function fitIntent(seed = 3, shape = SHAPE, data = trainingExamples(seed)): { layers: Layer[]; loss: number } {
  const xs = data.map((e) => {
    const idx = featureIndices(modelWords(tokens(e.text)));
    return { idx: Int32Array.from(idx), val: new Float32Array(idx.length).fill(1 / Math.sqrt(idx.length || 1)) };
  });
  const labels = Int32Array.from(data, (e) => INTENTS.indexOf(e.intent));
  return trainSparseSoftmax(xs, labels, FEATURES, INTENTS.length, { ...shape, r: rng(seed) });
}

export function trainIntent(log: (line: string) => void, seed = 3): TrainedModel & { labels: string[] } {
  const data = trainingExamples(seed);
  const { layers, loss } = fitIntent(seed, SHAPE, data);
  // Fresh generated utterances (another seed): a sanity figure; the real test is the hand-written held-out set.
  const fresh = generate(40, seed + 1000);
  let right = 0;
  for (const e of fresh) {
    const p = softmax(forward(layers, featurize(modelWords(tokens(e.text))))[2]!);
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
    training: `${data.length} utterances from agents/nlu/generator.ts (templates, synonyms, politeness, typos) and ${HANDWRITTEN.length} hand-written, seed ${seed}; MLP ${FEATURES}-${SHAPE.hidden}-${INTENTS.length}, softmax cross-entropy, ${SHAPE.epochs} epochs`,
    labels: INTENTS,
  };
}
