import { promptFeeds } from '../src/backend/backend.js';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileBackend } from '../src/backend/file.js';
import { loadCheckpoint } from '../src/checkpoint/checkpoint.js';
import { resolveTaskConfig, sampleBatch } from '../src/tasks/index.js';
import { scorePositions, shotCurve } from '../src/tasks/score.js';
import { Rng } from '../src/util/rng.js';

interface ZooModel {
  readonly name: string;
  readonly file: string;
  readonly metric: 'accuracy' | 'nmse';
  readonly icl: number;
  readonly weightsSha256: string;
}

const MODELS = path.resolve(__dirname, '..', 'models');
const zoo = JSON.parse(fs.readFileSync(path.join(MODELS, 'zoo.json'), 'utf8')) as ZooModel[];
const readme = fs.readFileSync(path.join(MODELS, 'README.md'), 'utf8');

describe('the model zoo', () => {
  it('lists every model in models/README.md and stays within 25 MB', () => {
    for (const m of zoo) expect(readme).toContain(`\`${m.name}\``);
    const bytes = fs.readdirSync(MODELS).reduce((s, f) => s + fs.statSync(path.join(MODELS, f)).size, 0);
    expect(bytes).toBeLessThan(25e6);
    expect(zoo.length).toBeGreaterThan(0);
  });

  it.each(zoo.map((m) => [m.name, m] as const))('%s opens, matches its manifest, and reproduces its ICL score on fresh prompts', async (_, m) => {
    const ck = loadCheckpoint(path.join(MODELS, m.file)); // checks the weights against the manifest's hash
    expect(ck.manifest.weightsSha256).toBe(m.weightsSha256);
    const task = resolveTaskConfig(ck.manifest.task);
    // Another seed than the README's figure (1234): fresh prompts of the same train tasks.
    const batch = sampleBatch(task, new Rng(4321), 512, { split: 'train', demos: task.demos.max });
    const source = await FileBackend.open(path.join(MODELS, m.file));
    try {
      const { output } = await source.run(promptFeeds(batch));
      const curve = shotCurve(batch.kind, scorePositions(batch, output));
      const score = curve.byShots[curve.byShots.length - 1];
      // Accuracy on 512 prompts: a binomial standard error ≤ 0.022, so 0.07 is > 3 of them.
      // Normalised MSE: within 30% of the figure, or 0.03 when the figure is tiny.
      const tolerance = m.metric === 'accuracy' ? 0.07 : Math.max(0.03, 0.3 * m.icl);
      expect(Math.abs(score - m.icl)).toBeLessThanOrEqual(tolerance);
    } finally {
      await source.close();
    }
  });
});
