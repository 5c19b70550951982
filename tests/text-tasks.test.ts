/**
 * Text tasks and the tokenizer: the shipped datasets, Hendel's and Todd's prompt formats with the
 * first answer token scored, a user's own pairs file, and the bad inputs each refused in one line.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TEXT_TASKS, loadTextTask, readPairsFile, textPromptRecords } from '../src/text/tasks.js';
import { TextTokenizer } from '../src/text/tokenizer.js';
import { GPT2 } from './support/decoders.js';

const tok = TextTokenizer.load(GPT2);
const id = (w: string) => {
  const ids = tok.encode(w);
  expect(ids).toHaveLength(1);
  return ids[0];
};
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-text-'));

describe('the shipped text tasks', () => {
  it.each(TEXT_TASKS)('%s has at least 50 pairs with distinct inputs', (name) => {
    const t = loadTextTask(name);
    expect(t.pairs.length).toBeGreaterThanOrEqual(50);
    expect(new Set(t.pairs.map((p) => p.x)).size).toBe(t.pairs.length);
  });

  it('knows a few facts', () => {
    const get = (task: string, x: string) => loadTextTask(task).pairs.find((p) => p.x === x)?.y;
    expect(get('antonyms', 'hot')).toBe('cold');
    expect(get('country_capital', 'France')).toBe('Paris');
    expect(get('next_letter', 'z')).toBe('a');
    expect(get('present_past', 'go')).toBe('went');
    expect(get('number_word', '42')).toBe('forty-two');
  });
});

describe('the tokenizer (tokenizer.json through @huggingface/tokenizers)', () => {
  it('splits on whitespace and punctuation and maps words to their vocabulary ids', () => {
    const vocab = JSON.parse(fs.readFileSync(path.join(GPT2, 'tokenizer.json'), 'utf8')).model.vocab as Record<string, number>;
    expect(tok.encode('example:hot->cold')).toEqual([vocab.example, vocab[':'], vocab.hot, vocab['->'], vocab.cold]);
    expect(tok.vocabSize).toBe(Object.keys(vocab).length);
  });

  it('maps an unknown word to the unknown token', () => {
    const [unk] = tok.encode('zyzzyva');
    expect(tok.isUnknown(unk)).toBe(true);
  });

  it('says in one line that a folder has no tokenizer.json', () => {
    expect(() => TextTokenizer.load(tmp())).toThrow(/has no tokenizer\.json/);
  });
});

describe('prompts in the two papers\' formats', () => {
  const antonyms = loadTextTask('antonyms');

  it("Hendel's: example:x->y demos, the query example:x->, answer the first token of y", () => {
    const p = textPromptRecords(tok, [antonyms], { format: 'hendel', shots: 3, prompts: 8 });
    const demo = p.search.find((r) => r.role === 'demo')!;
    // 3 demos of 5 tokens each, then the query's 4.
    expect(demo.tokens).toHaveLength(3 * 5 + 4);
    expect(tok.decode(demo.tokens.slice(0, 5)).replace(/\s/g, '')).toMatch(/^example:\w+->\w+$/);
    const queryWord = tok.decode([demo.tokens[demo.tokens.length - 2]]).trim();
    expect(demo.answer).toBe(id(antonyms.pairs.find((q) => q.x === queryWord)!.y));
    // Hendel's rule: the demos never hold the query's own input.
    const demoWords = [0, 1, 2].map((i) => demo.tokens[i * 5 + 2]);
    expect(demoWords).not.toContain(id(queryWord));
    const zero = p.search.find((r) => r.role === 'query')!;
    expect(zero.tokens).toHaveLength(4);
    expect(p.scoring).toMatch(/first token of the answer/);
  });

  it("Todd's: Q: x / A: y demos; every prompt of a role has one length", () => {
    const p = textPromptRecords(tok, [antonyms, loadTextTask('present_past')], { format: 'todd', shots: 4, prompts: 6 });
    const demos = p.search.filter((r) => r.role === 'demo');
    expect(new Set(demos.map((r) => r.tokens.length))).toEqual(new Set([4 * 6 + 5]));
    expect(tok.decode(demos[0].tokens.slice(0, 6)).replace(/\s/g, '')).toMatch(/^Q:\w+A:\w+$/);
    // The patching twin keeps the inputs and shuffles the labels.
    for (const r of p.pairs) {
      expect(r.corrupted).toHaveLength(r.tokens.length);
      expect([...r.corrupted!].sort()).toEqual([...r.tokens].sort());
    }
  });

  it('leaves out the pairs whose token lengths differ from the common one, and says how many', () => {
    const p = textPromptRecords(tok, [loadTextTask('country_capital')], { prompts: 2 });
    const kept = p.kept[0];
    // "Addis Ababa", "New Delhi", "Mexico City", "Buenos Aires" are two words each.
    expect(kept.total - kept.kept).toBe(4);
  });

  it("reads a user's own pairs as JSON or JSONL", () => {
    const dir = tmp();
    const pairs = antonyms.pairs.slice(0, 10);
    fs.writeFileSync(path.join(dir, 'mine.json'), JSON.stringify(pairs));
    fs.writeFileSync(path.join(dir, 'mine.jsonl'), pairs.map((p) => JSON.stringify(p)).join('\n'));
    expect(loadTextTask(path.join(dir, 'mine.json')).pairs).toEqual(pairs);
    expect(loadTextTask(path.join(dir, 'mine.jsonl'))).toEqual({ name: 'mine', pairs });
  });
});

describe('bad text input, one line each', () => {
  it('an empty task file', () => {
    const f = path.join(tmp(), 'empty.jsonl');
    fs.writeFileSync(f, '\n');
    expect(() => readPairsFile(f, 'empty')).toThrow(/is empty/);
    fs.writeFileSync(f, '[]');
    expect(() => readPairsFile(f, 'empty')).toThrow(/holds no pairs/);
  });

  it('a pair whose answer tokenizes to nothing', () => {
    const dir = tmp();
    const json = JSON.parse(fs.readFileSync(path.join(GPT2, 'tokenizer.json'), 'utf8'));
    json.normalizer = { type: 'Replace', pattern: { String: '~' }, content: '' };
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
    const odd = TextTokenizer.load(dir);
    const pairs = [...loadTextTask('antonyms').pairs.slice(0, 8), { x: 'hot', y: '~' }];
    expect(() => textPromptRecords(odd, [{ name: 'odd', pairs }])).toThrow(/pair 9 \("~"\) tokenizes to nothing/);
  });

  it('a pair that is not two strings', () => {
    const f = path.join(tmp(), 'bad.jsonl');
    fs.writeFileSync(f, '{"x": "a", "y": "b"}\n{"x": 3}\n');
    expect(() => readPairsFile(f, 'bad')).toThrow(/pair 2 is not/);
  });
});
