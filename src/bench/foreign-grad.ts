/**
 * Natural-language figures on the PyTorch-made GPT-2-style fixture (tests/fixtures/decoders/gpt2):
 *
 *   foreign_forward_backward_over_forward
 *                                   one forward-plus-backward pass of the imported graph (loss and
 *                                   the gradient of every weight, one ONNX Runtime run) ÷ one
 *                                   forward pass of the model as exported, on 16 five-shot prompts,
 *                                   each sample 20 passes of each
 *   foreign_backward_over_forward   the issue's figure, the backward pass ÷ the forward pass: the
 *                                   same two times, (forward-plus-backward − forward) ÷ forward,
 *                                   per repeat (goal ≤ 3; PyTorch's backward is about 2 forwards)
 *   tokenize_ms_per_1k_prompts      milliseconds to tokenize 1000 five-shot Todd-format prompts
 *                                   with the fixture's tokenizer.json (@huggingface/tokenizers)
 */
import fs from 'node:fs';
import path from 'node:path';
import { importForShape, withWeightGradients } from '../backend/foreign-grad.js';
import { decodeModel } from '../checkpoint/checkpoint.js';
import { op } from '../graph/index.js';
import { type HostTensor, Session } from '../runtime/session.js';
import { loadTextTask } from '../text/tasks.js';
import { TextTokenizer } from '../text/tokenizer.js';
import { PACKAGE_ROOT } from '../version.js';
import { type Figures, type Repeats, sampleInterleaved } from './timing.js';

const FIXTURE = path.join(PACKAGE_ROOT, 'tests', 'fixtures', 'decoders', 'gpt2');

export async function foreignGradFigures(repeats: Repeats): Promise<Figures> {
  const B = repeats.quick ? 8 : 16;
  const T = 29; // five Hendel demos of 5 tokens and a query of 4
  const model = decodeModel(new Uint8Array(fs.readFileSync(path.join(FIXTURE, 'model.onnx'))), FIXTURE);
  const imported = await importForShape(model, B, T);
  const g = imported.graph;
  const loss = op.crossEntropy(imported.outputs.get('logits')!, g.input('targets', 'int64', [B, T]), g.input('weights', 'float32', [B, T]));
  const { bytes } = withWeightGradients(imported, loss);
  const int = (data: BigInt64Array): HostTensor => ({ dtype: 'int64', shape: [B, T], data });
  const ids = BigInt64Array.from({ length: B * T }, (_, i) => BigInt(3 + (i % 700)));
  const feeds = {
    input_ids: int(ids),
    attention_mask: int(new BigInt64Array(B * T).fill(1n)),
    position_ids: int(BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T))),
  };
  const [forward, backward] = [await Session.open(path.join(FIXTURE, 'model.onnx')), await Session.open(bytes)];
  // One pass of this 3-layer d48 fixture takes a few ms, where one timed call swung from 1.7 to
  // 4.2 × in a run: each sample is a batch of passes, so the ratio does not ride on one scheduling hiccup.
  const PASSES = repeats.quick ? 5 : 20;
  const passes = (run: () => Promise<unknown>) => async () => {
    for (let i = 0; i < PASSES; i++) await run();
  };
  const backwardFeeds = { ...feeds, targets: int(ids), weights: { dtype: 'float32' as const, shape: [B, T], data: new Float32Array(B * T).fill(1) } };
  const tok = TextTokenizer.load(FIXTURE);
  const pairs = loadTextTask('antonyms').pairs;
  const texts = Array.from({ length: 1000 }, (_, n) => [...Array(6)].map((_, k) => pairs[(n * 7 + k * 13) % pairs.length]).map((p, k) => `Q: ${p.x}\nA:${k < 5 ? ` ${p.y}\n\n` : ''}`).join(''));
  try {
    const s = await sampleInterleaved(
      {
        forward: passes(() => forward.run(feeds)),
        forwardBackward: passes(() => backward.run(backwardFeeds)),
        tokenize: async () => texts.forEach((t) => tok.encode(t)),
      },
      repeats,
    );
    return {
      foreign_forward_backward_over_forward: s.ratio('forwardBackward', 'forward'),
      foreign_backward_over_forward: s.derive((x) => (x.forwardBackward - x.forward) / x.forward),
      tokenize_ms_per_1k_prompts: s.time('tokenize'),
    };
  } finally {
    await forward.release();
    await backward.release();
  }
}
