// stdio.ts: the sandboxee's stdio as the Executor asked for it ('inherit', 'ignore', 'pipe'). The
// streams of the piped ones exist from the Sandbox's construction; connect() makes the fds the
// request maps to 0, 1 and 2.
import { createReadStream, createWriteStream, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { PassThrough } from 'node:stream';
import { native } from '@sbx/client/internal';
import type { StdioOption } from './executor.js';

export class SandboxStdio {
  readonly stdin: PassThrough | null;
  readonly stdout: PassThrough | null;
  readonly stderr: PassThrough | null;
  private readonly connected = [false, false, false];

  constructor(private readonly modes: readonly [StdioOption, StdioOption, StdioOption]) {
    const [i, o, e] = modes;
    // node:stream only when a stream is asked for: inherited stdio (the CLI) never loads it.
    const Stream = modes.includes('pipe')
      ? (createRequire(import.meta.url)('node:stream') as typeof import('node:stream')).PassThrough
      : null;
    this.stdin = Stream && i === 'pipe' ? new Stream() : null;
    this.stdout = Stream && o === 'pipe' ? new Stream() : null;
    this.stderr = Stream && e === 'pipe' ? new Stream() : null;
  }

  /** The child's fds 0, 1, 2; the child's ends go into `closeAfterSpawn` (ours stay open). */
  connect(closeAfterSpawn: number[]): number[] {
    const fds: number[] = [];
    this.modes.forEach((mode, i) => {
      if (mode === 'inherit') fds.push(i);
      else if (mode === 'ignore') {
        const fd = openSync('/dev/null', i === 0 ? 'r' : 'w');
        closeAfterSpawn.push(fd);
        fds.push(fd);
      } else {
        const [r, w] = native().pipe();
        const [childEnd, ourEnd] = i === 0 ? [r, w] : [w, r];
        closeAfterSpawn.push(childEnd);
        fds.push(childEnd);
        this.connected[i] = true;
        if (i === 0) {
          // Errors of the pipe (EPIPE: the sandboxee closed its stdin) reach the user's stream.
          const pipe = createWriteStream('', { fd: ourEnd });
          pipe.on('error', (err) => this.stdin!.destroy(err));
          this.stdin!.pipe(pipe);
        } else {
          const out = (i === 1 ? this.stdout : this.stderr)!;
          const pipe = createReadStream('', { fd: ourEnd });
          pipe.on('error', (err) => out.destroy(err));
          pipe.pipe(out);
        }
      }
    });
    return fds;
  }

  /** Ends the streams no pipe was connected to (the sandboxee never started). */
  endUnconnected(): void {
    for (const [i, stream] of [this.stdin, this.stdout, this.stderr].entries()) {
      if (!stream || this.connected[i]) continue;
      if (i === 0)
        stream.resume().end(); // nothing will read what was written
      else stream.end();
    }
  }
}
