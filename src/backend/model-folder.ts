/**
 * A model folder as a user has it after exporting a Hugging Face model: `model.onnx` (or
 * `decoder_model.onnx`, optimum's name; either may sit under `onnx/`), `tokenizer.json`, and an
 * optional `config.json`. Opening one needs no hand-written hook map: the hooks are suggested from
 * the graph (see suggest-hooks.ts), and a hook map given by hand still wins.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';

export interface ModelFolder {
  readonly dir: string;
  /** The .onnx file of the decoder. */
  readonly onnx: string;
  /** tokenizer.json, or null when the folder has none. */
  readonly tokenizer: string | null;
  /** config.json, parsed, or null. */
  readonly config: Record<string, unknown> | null;
}

const ONNX_NAMES = ['model.onnx', 'decoder_model.onnx', 'onnx/model.onnx', 'onnx/decoder_model.onnx'];
const WITH_PAST_ONLY = ['decoder_with_past_model.onnx', 'decoder_model_merged.onnx', 'onnx/decoder_with_past_model.onnx', 'onnx/decoder_model_merged.onnx'];

export const isModelFolder = (p: string): boolean => fs.existsSync(p) && fs.statSync(p).isDirectory();

/** A folder holding a decoder under one of the names a model folder uses (a run folder of checkpoints does not). */
export const holdsModel = (dir: string): boolean => isModelFolder(dir) && ONNX_NAMES.some((n) => fs.existsSync(path.join(dir, n)));

export function readModelFolder(dir: string): ModelFolder {
  if (!isModelFolder(dir)) throw new InputError(`${dir} is not a folder`);
  const onnx = ONNX_NAMES.map((n) => path.join(dir, n)).find((f) => fs.existsSync(f));
  if (!onnx) {
    const past = WITH_PAST_ONLY.find((n) => fs.existsSync(path.join(dir, n)));
    if (past) throw new InputError(`${dir} holds only ${past}, an export with a key/value cache: export without it (optimum-cli export onnx --task text-generation, not text-generation-with-past) so that model.onnx or decoder_model.onnx is there`);
    throw new InputError(`${dir} holds no model: expected one of ${ONNX_NAMES.join(', ')}`);
  }
  const tok = path.join(dir, 'tokenizer.json');
  const cfgFile = path.join(dir, 'config.json');
  let config: Record<string, unknown> | null = null;
  if (fs.existsSync(cfgFile)) {
    try {
      config = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new InputError(`${cfgFile} is not valid JSON: ${(e as Error).message}`);
    }
  }
  return { dir, onnx, tokenizer: fs.existsSync(tok) ? tok : null, config };
}
