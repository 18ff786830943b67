// Attaching to a terminal container: its monitor holds the container's terminal and serves
// it on a unix socket; `ufs attach`, and `ufs run -t` / `ufs start -a` in the foreground, are
// clients of it. So Ctrl-P Ctrl-Q can detach a client and leave the container running, as
// in Docker, and a later `ufs attach` takes the terminal again.
//
// Frames both ways: 1 byte type, 4 bytes big-endian length, payload.
//   client -> monitor: DATA (keyboard input), RESIZE ({"cols","rows"})
//   monitor -> client: DATA (terminal output), EXIT ({"code","error"?}) last
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { UfsError } from '../common/errors.js';
import { runDir } from '../fuse/spec.js';
import { setTerminal } from './launch.js';

export const Frame = { DATA: 0, RESIZE: 1, EXIT: 2 } as const;
export type Frame = (typeof Frame)[keyof typeof Frame];

export function attachSocket(id: string): string {
  return path.join(runDir(), 'attach', `${id}.sock`);
}

export function frame(type: Frame, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(5);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

// Splits a byte stream into frames.
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private onFrame: (type: Frame, payload: Buffer) => void) {}
  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(1);
      if (this.buf.length < 5 + len) return;
      const type = this.buf.readUInt8(0) as Frame;
      const payload = this.buf.subarray(5, 5 + len);
      this.buf = this.buf.subarray(5 + len);
      this.onFrame(type, payload);
    }
  }
}

export interface TerminalSink {
  write(data: Buffer): void;
  resize(cols: number, rows: number): void;
}

// The monitor's side.
export class AttachServer {
  private server: net.Server;
  private clients = new Set<net.Socket>();
  private terminal: TerminalSink | undefined;
  private firstClient: Promise<{ cols: number; rows: number }>;
  private gotFirst!: (size: { cols: number; rows: number }) => void;

  private constructor(readonly socketPath: string) {
    this.firstClient = new Promise((resolve) => (this.gotFirst = resolve));
    this.server = net.createServer((sock) => this.accept(sock));
  }

  static async listen(id: string): Promise<AttachServer> {
    const p = attachSocket(id);
    fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o700 });
    fs.rmSync(p, { force: true });
    const s = new AttachServer(p);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(p, () => resolve());
    });
    return s;
  }

  private accept(sock: net.Socket): void {
    this.clients.add(sock);
    let sized = false;
    const reader = new FrameReader((type, payload) => {
      if (type === Frame.DATA) this.terminal?.write(payload);
      else if (type === Frame.RESIZE) {
        try {
          const size = JSON.parse(payload.toString()) as { cols: number; rows: number };
          const cols = size.cols > 0 ? size.cols : 80;
          const rows = size.rows > 0 ? size.rows : 24;
          this.terminal?.resize(cols, rows);
          if (!sized) this.gotFirst({ cols, rows });
          sized = true;
        } catch {
          // a bad frame: ignore it
        }
      }
    });
    sock.on('data', (d: Buffer) => reader.push(d));
    sock.on('error', () => {});
    sock.on('close', () => this.clients.delete(sock));
  }

  // Waits for the first client's terminal size (foreground run: start once it is there).
  waitForClient(ms: number): Promise<{ cols: number; rows: number } | undefined> {
    return Promise.race([this.firstClient, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);
  }

  connect(terminal: TerminalSink): void {
    this.terminal = terminal;
  }

  output(data: Buffer): void {
    const f = frame(Frame.DATA, data);
    for (const c of this.clients) c.write(f);
  }

  async close(code: number, error?: string): Promise<void> {
    const f = frame(Frame.EXIT, JSON.stringify({ code, ...(error ? { error } : {}) }));
    await Promise.all([...this.clients].map((c) => new Promise<void>((resolve) => {
      c.end(f, () => resolve());
      setTimeout(resolve, 1000).unref();
    })));
    this.server.close();
    fs.rmSync(this.socketPath, { force: true });
  }
}

// The terminal a foreground client works on: the CLI hands its own stdio in (made on first
// use, hence a function); the library never reaches for process.stdout itself.
export interface TerminalIo {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}
export type TerminalIoSource = () => TerminalIo;

export interface AttachOptions {
  io: TerminalIoSource;
  stdin: boolean;              // pass our input (-i)
  onSignal?: (sig: NodeJS.Signals) => void; // -t without -i: our Ctrl-C goes to the container
}

export type AttachResult = { detached: true } | { detached: false; code: number; error?: string };

const DETACH_KEYS = [0x10, 0x11]; // Ctrl-P Ctrl-Q

// The client's side: our terminal raw, our input and size to the container, its output to
// us, until it exits (its status) or we detach.
export async function attachTerminal(id: string, opts: AttachOptions): Promise<AttachResult> {
  const sockPath = attachSocket(id);
  const sock = net.createConnection(sockPath);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', (err) => reject(new UfsError(`cannot attach to the container: ${err.message}`)));
  });
  const { stdin, stdout } = opts.io();
  const cleanups: (() => void)[] = [];
  const sendSize = () => {
    const cols = stdout.isTTY ? stdout.columns : 80;
    const rows = stdout.isTTY ? stdout.rows : 24;
    sock.write(frame(Frame.RESIZE, JSON.stringify({ cols, rows })));
  };
  sendSize();
  if (stdout.isTTY) {
    stdout.on('resize', sendSize);
    cleanups.push(() => stdout.off('resize', sendSize));
  }
  return new Promise<AttachResult>((resolve) => {
    let settled = false;
    const finish = (r: AttachResult) => {
      if (settled) return;
      settled = true;
      for (const c of cleanups.reverse()) c();
      sock.destroy();
      resolve(r);
    };
    // The container's terminal does the line discipline: ours passes bytes through, output
    // included (Node's setRawMode keeps ONLCR: \r\r\n), as Docker's client makes it raw.
    // Without -i only the output side changes, so Ctrl-C still signals us and we pass it on.
    const restore = opts.stdin && stdin.isTTY ? setTerminal(0, ['raw', '-echo']) : stdout.isTTY ? setTerminal(1, ['-opost']) : undefined;
    if (restore) {
      process.once('exit', restore);
      cleanups.push(() => {
        restore();
        process.off('exit', restore);
      });
    }
    if (opts.stdin) {
      let prev = -1;
      const onData = (d: Buffer) => {
        // Ctrl-P Ctrl-Q detaches (a lone Ctrl-P is held back until the next key).
        let out = Buffer.alloc(0);
        for (const b of d) {
          if (prev === DETACH_KEYS[0] && b === DETACH_KEYS[1]) {
            if (out.length) sock.write(frame(Frame.DATA, out));
            finish({ detached: true });
            return;
          }
          if (prev === DETACH_KEYS[0]) out = Buffer.concat([out, Buffer.from([prev])]);
          if (b !== DETACH_KEYS[0]) out = Buffer.concat([out, Buffer.from([b])]);
          prev = b;
        }
        if (out.length) sock.write(frame(Frame.DATA, out));
      };
      stdin.on('data', onData);
      stdin.resume();
      cleanups.push(() => {
        stdin.off('data', onData);
        stdin.pause();
      });
    }
    if (!opts.stdin && opts.onSignal) {
      const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as NodeJS.Signals[]).map((sig) => {
        const h = () => opts.onSignal?.(sig);
        process.on(sig, h);
        return () => process.off(sig, h);
      });
      cleanups.push(...handlers);
    }
    const reader = new FrameReader((type, payload) => {
      if (type === Frame.DATA) stdout.write(payload);
      else if (type === Frame.EXIT) {
        let msg: { code: number; error?: string } = { code: 255 };
        try {
          msg = JSON.parse(payload.toString());
        } catch {
          // keep 255
        }
        finish({ detached: false, code: msg.code, ...(msg.error ? { error: msg.error } : {}) });
      }
    });
    sock.on('data', (d: Buffer) => reader.push(d));
    sock.on('error', () => {});
    sock.on('close', () => finish({ detached: false, code: 255, error: 'the container monitor went away' }));
  });
}
