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

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(false);
    try {
      return await fn();
    } finally {
      this.readers--;
      this.pump();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(true);
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
