// A min-heap of (due time, id): the next message to deliver in O(log n), not a scan of the queue.

/** Entries may be pushed again with a new time; stale ones are skipped by the caller's check. */
export class DueHeap {
  private readonly items: Array<[number, string]> = [];

  get size(): number {
    return this.items.length;
  }

  push(due: number, id: string): void {
    const items = this.items;
    items.push([due, id]);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]![0] <= items[i]![0]) break;
      [items[parent], items[i]] = [items[i]!, items[parent]!];
      i = parent;
    }
  }

  peek(): [number, string] | undefined {
    return this.items[0];
  }

  pop(): [number, string] | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < items.length && items[left]![0] < items[smallest]![0]) {
          smallest = left;
        }
        if (right < items.length && items[right]![0] < items[smallest]![0]) {
          smallest = right;
        }
        if (smallest === i) break;
        [items[smallest], items[i]] = [items[i]!, items[smallest]!];
        i = smallest;
      }
    }
    return top;
  }
}
