/**
 * The one way a backend is opened: `Model` calls this, nothing else does. A checkpoint (its
 * manifest beside it) gets the GraphBackend, a foreign ONNX model the FileBackend; the file is read
 * and decoded once either way.
 */
import { InputError } from '../errors.js';
import type { Backend } from './backend.js';
import { FileBackend, type FileBackendOptions } from './file.js';
import { readModelFile } from './file-open.js';
import { GraphBackend } from './graph.js';

export type BackendOptions = FileBackendOptions;

export async function openBackend(file: string, options: BackendOptions = {}): Promise<Backend> {
  const { hookMap, padTo, split, ...session } = options;
  const { model, checkpoint } = readModelFile(file, hookMap);
  if (checkpoint) {
    if (padTo !== undefined) throw new InputError('padTo applies to a foreign model; a checkpoint runs prompts at their own length');
    return GraphBackend.fromCheckpoint(checkpoint, session);
  }
  return FileBackend.over(model, { padTo, split, ...session });
}
