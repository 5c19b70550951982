/**
 * Temporaries and locks to remove however the process ends: on a normal exit, on an error, and on
 * SIGINT / SIGTERM (then the process exits 130 / 143, as a shell expects). Writers register what
 * they create and unregister it once it is renamed or released.
 */
import fs from 'node:fs';

const temps = new Set<string>();
const hooks = new Set<() => void>();
let installed = false;

function runAll(): void {
  for (const f of temps) {
    try {
      fs.rmSync(f, { force: true });
    } catch {
      // nothing more can be done on the way out
    }
  }
  temps.clear();
  for (const h of [...hooks]) {
    try {
      h();
    } catch {
      // as above
    }
  }
  hooks.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runAll);
}

/**
 * Makes SIGINT and SIGTERM remove what is registered, then exit 130 / 143 as a shell expects.
 * The CLI calls this; a library user's process keeps its own signal handling.
 */
export function cleanUpOnSignals(): void {
  install();
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      const some = temps.size + hooks.size > 0;
      runAll();
      process.stderr.write(`\ntvlens: stopped by ${signal}${some ? '; temporary files and locks removed' : ''}\n`);
      // The signal again, now with its default action: the process ends at once, as killed by it
      // (a shell sees 130 / 143). process.exit would first stop the worker threads, and a worker
      // inside an ONNX Runtime run (a training step) aborts the process when stopped that way.
      // Other 'exit' listeners do not run then: every cleanup tvlens needs is registered here.
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
      process.exit(code); // only if the signal's default action did not end the process
    });
  }
}

/** Removes `file` if the process ends before the returned function is called. */
export function trackTemp(file: string): () => void {
  install();
  temps.add(file);
  return () => temps.delete(file);
}

/** Runs `hook` (synchronous) if the process ends before the returned function is called. */
export function onExit(hook: () => void): () => void {
  install();
  hooks.add(hook);
  return () => hooks.delete(hook);
}
