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
    const all = this.start === 0 ? this.items : [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
    return n >= all.length ? all.slice() : all.slice(all.length - n);
  }

  latest(): T | undefined {
    if (this.items.length === 0) return undefined;
    return this.items[(this.start + this.items.length - 1) % this.items.length];
  }
}
