/** A fixed-size ring of the latest values, oldest first when read. */
export class Ring<T> {
  private items: T[] = [];
  private start = 0;

  constructor(readonly capacity: number) {}

  push(v: T): void {
    if (this.items.length < this.capacity) this.items.push(v);
    else {
      this.items[this.start] = v;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  get length(): number {
    return this.items.length;
  }

  /** The last n values (all when n is omitted), oldest first. */
  last(n = this.items.length): T[] {
    // Only the n values asked for are copied (the detectors ask for short windows of a long ring, many times a tick).
    const len = this.items.length;
    const k = Math.max(0, Math.min(n, len));
    const out = new Array<T>(k);
    for (let i = 0; i < k; i++) out[i] = this.items[(this.start + len - k + i) % len]!;
    return out;
  }

  latest(): T | undefined {
    if (this.items.length === 0) return undefined;
    return this.items[(this.start + this.items.length - 1) % this.items.length];
  }
}
