// The intent model: hashed text features → 2 × 96 hidden units → one softmax
// output per tool of the catalog that language can reach. Trained by
// `make models` on the generator's utterances plus hand-written examples.
// It is two networks, each trained on its own generated set, whose outputs
// (before the softmax) are averaged; written as one network of twice the
// width, so the device runs one small MLP as before. One network's accuracy on
// the held-out sets moves by a point or more with the seed alone; two of them
// move less and are better on average.

import { encodeModel, mlpGraph } from "../models/onnx.ts";
import { forward, rng, softmax, type Layer } from "../models/train.ts";
import { trainSparseSoftmax } from "./sparse-train.ts";
import type { TrainedModel } from "../models/forecast-model.ts";
import { FEATURES, featureIndices, featurize, modelWords } from "./features.ts";
import { generate, HANDWRITTEN, INTENTS, type Example } from "./generator.ts";
import { tokens } from "./text.ts";
import { sourceWords } from "./source.ts";

/** The words the model reads for a training utterance: paths and URLs as the placeholder, as at run time. */
const words = (text: string) => modelWords(tokens(sourceWords(text).model));


/** The training set: the generator's utterances and the hand-written examples (each eight times). */
export function trainingExamples(seed = 3): Example[] {
  const data = generate(2500, seed);
  for (let k = 0; k < 8; k++) for (const [text, intent] of HANDWRITTEN) data.push({ text, intent });
  return data;
}

/** How each network is shaped and trained. */
export const SHAPE = { hidden: 96, epochs: 12, batch: 64, lr: 0.005, l2: 0.0001 };

/** The seeds of the networks (and of their generated sets) from the model's seed. */
export function memberSeeds(seed = 3): number[] {
  return [seed, seed + 100];
}

/** Networks of the same shape as one: their hidden units side by side, their outputs averaged. */
export function combine(members: Layer[][]): Layer[] {
  const k = members.length;
  const [first, second] = [members[0]![0]!, members[0]![1]!];
  const inDim = first.inDim, h = first.outDim, c = second.outDim;
  const w1 = new Float32Array(inDim * h * k), b1 = new Float32Array(h * k);
  const w2 = new Float32Array(h * k * c), b2 = new Float32Array(c);
  members.forEach(([l1, l2], m) => {
    for (let i = 0; i < inDim; i++) w1.set(l1!.w.subarray(i * h, (i + 1) * h), i * h * k + m * h);
    b1.set(l1!.b, m * h);
    for (let j = 0; j < h * c; j++) w2[m * h * c + j] = l2!.w[j]! / k;
    for (let j = 0; j < c; j++) b2[j]! += l2!.b[j]! / k;
  });
  return [
    { w: w1, b: b1, inDim, outDim: h * k, act: "relu" },
    { w: w2, b: b2, inDim: h * k, outDim: c },
  ];
}

/** Trains the network on the training set; returns its layers and the final training loss. */
export function fitIntent(seed = 3, shape = SHAPE, data = trainingExamples(seed)): { layers: Layer[]; loss: number } {
  const xs = data.map((e) => {
    const idx = featureIndices(words(e.text));
    return { idx: Int32Array.from(idx), val: new Float32Array(idx.length).fill(1 / Math.sqrt(idx.length || 1)) };
  });
  const labels = Int32Array.from(data, (e) => INTENTS.indexOf(e.intent));
  return trainSparseSoftmax(xs, labels, FEATURES, INTENTS.length, { ...shape, r: rng(seed) });
}

export function trainIntent(log: (line: string) => void, seed = 3): TrainedModel & { labels: string[] } {
  const seeds = memberSeeds(seed);
  let examples = 0;
  const fits = seeds.map((s) => {
    const data = trainingExamples(s);
    examples += data.length;
    return fitIntent(s, SHAPE, data);
  });
  const layers = combine(fits.map((f) => f.layers));
  const loss = fits.reduce((a, f) => a + f.loss, 0) / fits.length;
  // Fresh generated utterances (another seed): a sanity figure; the real test is the hand-written held-out set.
  const fresh = generate(40, seed + 1000);
  let right = 0;
  for (const e of fresh) {
    const p = softmax(forward(layers, featurize(words(e.text)))[2]!);
    if (INTENTS[p.indexOf(Math.max(...p))] === e.intent) right++;
  }
  const metrics = { train_loss: +loss.toFixed(4), generated_accuracy: +(right / fresh.length).toFixed(4), examples };
  log(`intent: ${examples} training utterances for ${seeds.length} networks, ${INTENTS.length} intents; accuracy on fresh generated utterances ${(metrics.generated_accuracy * 100).toFixed(1)}%`);
  const graph = mlpGraph("intent", { name: "features", shape: ["batch", FEATURES] }, { name: "probabilities", shape: ["batch", INTENTS.length] }, [
    { ...layers[0]!, act: "relu" },
    { ...layers[1]!, act: "softmax" },
  ]);
  return {
    bytes: encodeModel(graph, { purpose: "intent", labels: INTENTS.join(",") }),
    inputs: `features: float32[batch, ${FEATURES}], hashed words, word pairs and letter triples of the utterance`,
    outputs: `probabilities: float32[batch, ${INTENTS.length}] over ${INTENTS.join(", ")}`,
    metrics,
    training: `${examples} utterances from agents/nlu/generator.ts (templates, synonyms, politeness, typos) and ${HANDWRITTEN.length} hand-written, seeds ${seeds.join(" and ")}; ${seeds.length} MLPs ${FEATURES}-${SHAPE.hidden}-${INTENTS.length} with their logits averaged (one MLP ${FEATURES}-${SHAPE.hidden * seeds.length}-${INTENTS.length}), softmax cross-entropy, ${SHAPE.epochs} epochs`,
    labels: INTENTS,
  };
}
