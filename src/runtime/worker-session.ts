/**
 * A session whose runs happen on a worker thread. onnxruntime-node runs a model synchronously on
 * the calling thread, so a run of several seconds (one training step of a 38M-parameter model takes
 * 3–6 s on 2 cores) held off SIGINT / SIGTERM and every progress line until it ended. Here the main
 * thread only waits for a message, so a signal's handler runs at once: it removes the run lock and
 * exits, which ends the worker too.
 *
 * The worker is plain JavaScript that loads onnxruntime-node itself, with the options `Session`
 * would use, so that it needs no build step (tests run the TypeScript sources).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { HostTensor, SessionOptions } from './session.js';
import { ortSessionOptions, refusal, runFailure } from './session.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
ort.env.logLevel = 'fatal';
let session = null;
const buffersOf = (tensors) => [...new Set(Object.values(tensors).map((t) => t.data.buffer))];
parentPort.on('message', async (msg) => {
  if (msg.kind === 'open') {
    try {
      session = await ort.InferenceSession.create(msg.model, workerData.sessionOptions);
      parentPort.postMessage({ inputNames: session.inputNames, outputNames: session.outputNames });
    } catch (e) {
      parentPort.postMessage({ error: String(e && e.message ? e.message : e) });
    }
    return;
  }
  try {
    const feeds = {};
    for (const [k, t] of Object.entries(msg.feeds)) feeds[k] = new ort.Tensor(t.dtype, t.data, t.shape);
    const result = msg.fetch ? await session.run(feeds, msg.fetch) : await session.run(feeds);
    const out = {};
    for (const [k, t] of Object.entries(result)) {
      out[k] = { dtype: t.type, shape: t.dims.slice(), data: t.type === 'bool' ? new Uint8Array(t.data.buffer) : t.data };
    }
    parentPort.postMessage({ out }, buffersOf(out));
  } catch (e) {
    parentPort.postMessage({ error: String(e && e.message ? e.message : e) });
  }
});
`;

type Reply = { inputNames?: string[]; outputNames?: string[]; out?: Record<string, HostTensor>; error?: string };

export class WorkerSession {
  private pending: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly worker: Worker,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
  ) {}

  static async open(model: Uint8Array, options: SessionOptions = {}): Promise<WorkerSession> {
    const { provider, sessionOptions } = ortSessionOptions(options);
    const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ortPath, sessionOptions } });
    worker.unref(); // a worker never keeps the process alive by itself
    worker.once('exit', () => exited.add(worker));
    const reply = await ask(worker, { kind: 'open', model });
    if (reply.error !== undefined) {
      await worker.terminate();
      throw refusal(provider, reply.error);
    }
    return new WorkerSession(worker, reply.inputNames!, reply.outputNames!);
  }

  /**
   * Runs the model on the worker. The feeds named in `lend` move to the worker instead of being
   * copied (no second copy of a large model's weights in memory), each with the whole buffer it
   * views: the caller must own those buffers and not read them again, even when the run fails.
   */
  async run(feeds: Readonly<Record<string, HostTensor>>, fetch?: readonly string[], options: { lend?: readonly string[] } = {}): Promise<Record<string, HostTensor>> {
    const lent = [
      ...new Set(
        (options.lend ?? []).map((name) => {
          const d = feeds[name]?.data;
          if (!d || !(d.buffer instanceof ArrayBuffer)) throw new Error(`internal: cannot lend feed '${name}'`);
          return d.buffer;
        }),
      ),
    ];
    const run = this.pending.then(() => ask(this.worker, { kind: 'run', feeds, fetch }, lent));
    this.pending = run.catch(() => undefined);
    const reply = await run;
    if (reply.error !== undefined) throw runFailure(reply.error);
    return reply.out!;
  }

  async release(): Promise<void> {
    await this.pending;
    await this.worker.terminate();
  }
}

/** Workers that have exited: a message to one would never be answered. */
const exited = new WeakSet<Worker>();

function ask(worker: Worker, message: object, transfer: ArrayBuffer[] = []): Promise<Reply> {
  return new Promise((resolve, reject) => {
    if (exited.has(worker)) return reject(runFailure('the worker thread has exited'));
    const done = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const onMessage = (reply: Reply) => (done(), resolve(reply));
    const onError = (e: Error) => (done(), reject(runFailure(e.message)));
    const onExit = (code: number) => (exited.add(worker), done(), reject(runFailure(`the worker thread exited (code ${code})`)));
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.ref(); // while a reply is awaited, the process waits for it
    worker.postMessage(message, transfer);
  }).finally(() => worker.unref()) as Promise<Reply>;
}
