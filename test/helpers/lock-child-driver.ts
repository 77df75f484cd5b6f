// SPDX-License-Identifier: MIT
// Parent side of test/helpers/lock-child.ts: one long-lived child, asked one line at a time.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'lock-child.js');

export class LockChild {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly #waiting: ((line: string) => void)[] = [];
  readonly #exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #stderr = '';
  constructor(mode: 'fake' | 'real', options: readonly string[], env: NodeJS.ProcessEnv = process.env) {
    this.proc = spawn(process.execPath, [CHILD, mode, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'pipe'], env });
    this.proc.stderr.on('data', (d: Buffer) => (this.#stderr += d.toString()));
    createInterface({ input: this.proc.stdout }).on('line', (line) => this.#waiting.shift()?.(line));
    this.#exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    // A child that dies while asked answers with its death instead of hanging the test.
    void this.#exited.then(({ code, signal }) => {
      for (const w of this.#waiting.splice(0)) w(`exited ${code ?? signal} ${this.#stderr}`);
    });
  }
  get pid(): number {
    return this.proc.pid ?? -1;
  }
  /** Sends one command; resolves with the child's one-line answer. */
  ask(command: string): Promise<string> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.proc.stdin.write(`${command}\n`);
    });
  }
  /** SIGKILL, resolved once the kernel has reaped it (its fds, and so its flock, are gone). */
  async kill9(): Promise<void> {
    this.proc.kill('SIGKILL');
    await this.#exited;
  }
  /** Kills the child unless it has exited already; for `finally` blocks. */
  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    await this.#exited;
  }
  /** Closes stdin (the child exits its loop) and waits for the exit code. */
  async end(): Promise<number | null> {
    this.proc.stdin.end();
    return (await this.#exited).code;
  }
}
