// A cache map that holds at most `max` entries, forgetting the oldest first. For what the
// union keeps about immutable lower layers: any entry can be read again from the layer, so
// forgetting one costs a system call, while keeping all of them grows with every file a walk
// touches. The keys in insertion order sit in a ring, so that making room costs one delete
// (no iterator per insertion).
export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();
  private readonly ring: (K | undefined)[];
  private next = 0; // the ring's slot for the next new key, holding the oldest key once full

  constructor(private readonly max: number) {
    this.ring = new Array<K | undefined>(max).fill(undefined);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  set(key: K, value: V): void {
    if (this.map.has(key)) {
      this.map.set(key, value);
      return;
    }
    if (this.map.size >= this.max) this.map.delete(this.ring[this.next] as K);
    this.ring[this.next] = key;
    this.next = (this.next + 1) % this.max;
    this.map.set(key, value);
  }

  clear(): void {
    this.map.clear();
    this.ring.fill(undefined);
    this.next = 0;
  }
}
