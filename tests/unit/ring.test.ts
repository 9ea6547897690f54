// The monitor's ring of ticks: last(n) must give the newest n values, oldest
// first, whatever the ring's fill and where its start has wrapped to.
import { describe, expect, test } from "vitest";
import { Ring } from "../../agents/monitor/ring.ts";

describe("Ring", () => {
  test("last(n) and latest() agree with a plain list of everything pushed, at every fill and wrap", () => {
    for (const capacity of [1, 2, 5, 7]) {
      const ring = new Ring<number>(capacity);
      const all: number[] = [];
      expect(ring.last(3)).toEqual([]);
      expect(ring.latest()).toBeUndefined();
      for (let v = 0; v < 3 * capacity + 2; v++) {
        ring.push(v);
        all.push(v);
        const kept = all.slice(-capacity);
        expect(ring.length).toBe(kept.length);
        expect(ring.last()).toEqual(kept);
        expect(ring.latest()).toBe(v);
        for (let n = 0; n <= capacity + 2; n++) expect(ring.last(n)).toEqual(n === 0 ? [] : kept.slice(-n));
      }
    }
  });

  test("what last() returns is a copy: changing it leaves the ring as it was", () => {
    const ring = new Ring<number>(3);
    for (const v of [1, 2, 3, 4]) ring.push(v);
    const got = ring.last(2);
    got[0] = 99;
    expect(ring.last()).toEqual([2, 3, 4]);
  });
});
