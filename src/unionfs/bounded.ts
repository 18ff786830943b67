// A cache map that holds at most `max` entries, forgetting the oldest first. For what the
// union keeps about immutable lower layers: any entry can be read again from the layer, so
// forgetting one costs a system call, while keeping all of them grows with every file a walk
// touches (a stat record with its BigInts and Dates is about 1 KiB of heap).
export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  set(key: K, value: V): void {
    if (this.map.size >= this.max && !this.map.has(key)) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
    this.map.set(key, value);
  }

  clear(): void {
    this.map.clear();
  }
}
