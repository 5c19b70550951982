/**
 * A one-line progress bar with ETA on stderr. On a terminal it redraws in place; elsewhere (CI,
 * a log file) it prints a plain line at the first update, then every few seconds, so logs stay readable.
 */
export class Progress {
  private readonly start = performance.now();
  /** The first update prints at once (a user learns within moments that work has begun); later ones are spaced. */
  private lastPrint = -Infinity;
  private readonly tty = process.stderr.isTTY === true;

  constructor(
    private readonly label: string,
    public total: number,
    private readonly enabled = true,
  ) {}

  update(done: number, fields: Readonly<Record<string, string>> = {}): void {
    if (!this.enabled) return;
    const now = performance.now();
    const finished = done >= this.total;
    if (!finished && now - this.lastPrint < (this.tty ? 100 : 5000)) return;
    this.lastPrint = now;
    const elapsed = (now - this.start) / 1000;
    const eta = done > 0 ? (elapsed / done) * (this.total - done) : NaN;
    const width = 24;
    const filled = Math.round((width * done) / this.total);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
    const extra = Object.entries(fields).map(([k, v]) => `${k} ${v}`).join('  ');
    const line = `${this.label} ${bar} ${done}/${this.total}  ${extra}  ${formatTime(elapsed)} elapsed, ETA ${formatTime(eta)}`;
    process.stderr.write(this.tty ? `\r\x1b[K${line}` : `${line}\n`);
    if (finished && this.tty) process.stderr.write('\n');
  }

  /** Prints a message on its own line without breaking the bar. */
  log(message: string): void {
    if (!this.enabled) return;
    process.stderr.write(this.tty ? `\r\x1b[K${message}\n` : `${message}\n`);
  }
}

export function formatTime(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}
