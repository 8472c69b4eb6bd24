/** A binary min-heap; the memory queue keeps its ready and delayed tasks in two of them. */

/** A binary min-heap ordered by `compare` (negative when `a` comes first). */
export class Heap<T> {
  readonly #items: T[] = [];
  readonly #compare: (a: T, b: T) => number;

  constructor(compare: (a: T, b: T) => number) {
    this.#compare = compare;
  }

  /** How many items the heap holds. */
  get size(): number {
    return this.#items.length;
  }

  /** The first item without removing it, or undefined when empty. */
  peek(): T | undefined {
    return this.#items[0];
  }

  /** Adds an item. */
  push(item: T): void {
    const items = this.#items;
    items.push(item);
    let index = items.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (this.#compare(items[index] as T, items[parent] as T) >= 0) break;
      this.#swap(index, parent);
      index = parent;
    }
  }

  /** Removes and returns the first item, or undefined when empty. */
  pop(): T | undefined {
    const items = this.#items;
    const first = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return first;
    items[0] = last;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < items.length && this.#compare(items[left] as T, items[smallest] as T) < 0) smallest = left;
      if (right < items.length && this.#compare(items[right] as T, items[smallest] as T) < 0)
        smallest = right;
      if (smallest === index) break;
      this.#swap(index, smallest);
      index = smallest;
    }
    return first;
  }

  #swap(a: number, b: number): void {
    const items = this.#items;
    const itemA = items[a] as T;
    items[a] = items[b] as T;
    items[b] = itemA;
  }
}
