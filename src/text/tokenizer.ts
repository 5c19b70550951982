/**
 * A model folder's tokenizer: `tokenizer.json` (and `tokenizer_config.json` where present) read by
 * @huggingface/tokenizers, the maintained pure-JS port of Hugging Face's tokenizers. Nothing is
 * fetched: the files are read from the folder. BPE, WordPiece, Unigram and word-level vocabularies
 * are the package's; this file only loads them and turns their failures into one line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { InputError } from '../errors.js';

export class TextTokenizer {
  private constructor(
    private readonly hf: HfTokenizer,
    /** The tokenizer.json it was read from. */
    readonly file: string,
    /** Vocabulary size: one more than the largest id (added tokens included). */
    readonly vocabSize: number,
    private readonly unknownId: number | null,
  ) {}

  /** Reads `tokenizer.json` (a file, or the folder holding it). */
  static load(fileOrDir: string): TextTokenizer {
    const file = fs.existsSync(fileOrDir) && fs.statSync(fileOrDir).isDirectory() ? path.join(fileOrDir, 'tokenizer.json') : fileOrDir;
    if (!fs.existsSync(file)) throw new InputError(`${path.dirname(file)} has no tokenizer.json: save the model's tokenizer beside it (tokenizer.save_pretrained(dir) writes one)`);
    const json = readJson(file);
    const model = (json as { model?: { unk_token?: unknown; vocab?: unknown } }).model;
    if (!model || typeof model !== 'object' || !model.vocab) throw new InputError(`${file} is not a Hugging Face tokenizer.json (it has no model.vocab)`);
    const configFile = path.join(path.dirname(file), 'tokenizer_config.json');
    const config = fs.existsSync(configFile) ? (readJson(configFile) as Record<string, unknown>) : {};
    // A word-level vocabulary names its unknown token in the model, where the package's loader
    // does not look; handing it over makes unknown words map to it instead of to nothing.
    const unk = typeof model.unk_token === 'string' ? model.unk_token : undefined;
    let hf: HfTokenizer;
    try {
      hf = new HfTokenizer(json, { unk_token: unk, ...config });
    } catch (e) {
      throw new InputError(`${file}: the tokenizer cannot be loaded (${(e as Error).message})`);
    }
    const ids = [...hf.get_vocab(true).values()];
    const vocabSize = ids.length ? Math.max(...ids) + 1 : 0;
    const unknownId = unk !== undefined ? (hf.token_to_id(unk) ?? null) : null;
    return new TextTokenizer(hf, file, vocabSize, unknownId);
  }

  /**
   * Token ids of `text`. `special` adds the tokens the tokenizer's post-processor puts around a
   * text (a BOS for Llama-style tokenizers, nothing for GPT-2's). Default false.
   */
  encode(text: string, special = false): number[] {
    const ids = this.hf.encode(text, { add_special_tokens: special }).ids as (number | undefined)[];
    return ids.map((id, i) => {
      if (id !== undefined) return id;
      if (this.unknownId !== null) return this.unknownId;
      throw new InputError(`${this.file}: the text ${JSON.stringify(text)} has a piece with no token id (${JSON.stringify(this.hf.tokenize(text)[i])}) and the tokenizer has no unknown token`);
    });
  }

  /** The token strings of `text`, as the tokenizer splits it. */
  tokens(text: string, special = false): string[] {
    return this.hf.tokenize(text, { add_special_tokens: special });
  }

  /** The tokens the post-processor puts before a text (e.g. [BOS]); empty for GPT-2-style tokenizers. */
  prefix(): number[] {
    const marker = 'tvlens';
    const plain = this.encode(marker);
    const full = this.encode(marker, true);
    const at = full.findIndex((_, i) => plain.every((t, j) => full[i + j] === t));
    return at > 0 ? full.slice(0, at) : [];
  }

  decode(ids: readonly number[]): string {
    return this.hf.decode([...ids]);
  }

  /** Whether `id` stands for an unknown piece. */
  isUnknown(id: number): boolean {
    return id === this.unknownId;
  }
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InputError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
}
