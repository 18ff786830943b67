// A readers-writer lock, FIFO-fair (a waiting writer holds back later readers).
//
// Why: the union resolves a path in upper component by component with lstat and then uses
// the host path. If a structural change (unlink + symlink, rename, rmdir) could run in between,
// a component checked as a real directory might have become a symlink to the host by the
// time the path is used. So every operation that resolves upper paths holds the lock shared,
// and every operation that changes upper's names (create, delete, rename, copy-up placement)
// holds it exclusive. Long data copies (copy-up of a big file) run outside the lock.
type Waiter = { write: boolean; grant: () => void };

export class RwLock {
  private readers = 0;
  private writing = false;
  private readonly queue: Waiter[] = [];

  // Most requests find the lock free and hold it only for synchronous work: they take it at
  // once, without a trip through the promise queue.
  async shared<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.writing || this.queue.length > 0) await this.acquire(false);
    else this.readers++;
    try {
      return await fn();
    } finally {
      this.readers--;
      this.pump();
    }
  }

  async exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.writing || this.readers > 0 || this.queue.length > 0) await this.acquire(true);
    else this.writing = true;
    try {
      return await fn();
    } finally {
      this.writing = false;
      this.pump();
    }
  }

  private acquire(write: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      this.queue.push({ write, grant: resolve });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (head.write) {
        if (this.writing || this.readers > 0) return;
        this.queue.shift();
        this.writing = true;
        head.grant();
        return;
      }
      if (this.writing) return;
      this.queue.shift();
      this.readers++;
      head.grant();
    }
  }
}
