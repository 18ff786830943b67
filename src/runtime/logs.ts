// Container logs for detached containers, in Docker's json-file form: one JSON object per
// line, {"log": "<text up to and including a newline>", "stream": "stdout"|"stderr", "time"}.
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

export type LogStream = 'stdout' | 'stderr';

export class JsonLogWriter {
  private fd: number;
  private partial: Record<LogStream, string> = { stdout: '', stderr: '' };
  private decoders: Record<LogStream, StringDecoder> = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };

  constructor(file: string) {
    this.fd = fs.openSync(file, 'a', 0o640);
  }

  write(stream: LogStream, chunk: Buffer | string): void {
    let text = this.partial[stream] + (typeof chunk === 'string' ? chunk : this.decoders[stream].write(chunk));
    let out = '';
    const time = new Date().toISOString();
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
      out += `${JSON.stringify({ log: text.slice(0, nl + 1), stream, time })}\n`;
      text = text.slice(nl + 1);
    }
    this.partial[stream] = text;
    if (out) this.append(out);
  }

  // Output that does not fit on a full disk is dropped (as Docker's json-file driver does),
  // never the container's run.
  private append(text: string): void {
    try {
      fs.writeSync(this.fd, text);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOSPC' && code !== 'EDQUOT' && code !== 'EIO') throw err;
    }
  }

  close(): void {
    for (const stream of ['stdout', 'stderr'] as LogStream[]) {
      const rest = this.partial[stream] + this.decoders[stream].end();
      if (rest) this.append(`${JSON.stringify({ log: rest, stream, time: new Date().toISOString() })}\n`);
      this.partial[stream] = '';
    }
    fs.closeSync(this.fd);
  }
}

interface LogEntry { log: string; stream: LogStream; time?: string }

// Reads whole lines from `offset` on; returns the entries and where the next read starts
// (a half-written last line is left for the next read).
export function readLogFrom(file: string, offset: number): { entries: LogEntry[]; next: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return { entries: [], next: offset };
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size <= offset) return { entries: [], next: offset };
    const buf = Buffer.alloc(size - offset);
    const n = fs.readSync(fd, buf, 0, buf.length, offset);
    const last = buf.subarray(0, n).lastIndexOf(0x0a);
    if (last < 0) return { entries: [], next: offset };
    const entries: LogEntry[] = [];
    for (const line of buf.subarray(0, last).toString('utf8').split('\n')) {
      if (!line) continue;
      try {
        const e = JSON.parse(line) as LogEntry;
        if (typeof e.log === 'string') entries.push(e);
      } catch {
        // a damaged line: skip it rather than stop the whole log
      }
    }
    return { entries, next: offset + last + 1 };
  } finally {
    fs.closeSync(fd);
  }
}
