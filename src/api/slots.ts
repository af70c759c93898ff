// A counting semaphore: at most `limit` holders at once, the others served in order of arrival.
export class Slots {
  private held = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async acquire(): Promise<void> {
    if (this.held < this.limit) {
      this.held++;
      return;
    }
    await new Promise<void>(resolve => this.waiting.push(resolve));
  }

  /** Hands the slot to the next waiting holder, or frees it. */
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.held--;
  }
}
