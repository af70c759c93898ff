// IntakeBuffer.onNext: each fresh message is announced once, when it comes within
// `concurrency` of the head of the ready list (the fleet then asks Redis ahead for its keys).
import { expect } from 'chai';
import { createLogger } from '../../src/observability/logger.js';
import { IntakeBuffer } from '../../src/queue/intake-buffer.js';
import type { QueueEntry } from '../../src/spool/queue-entry.js';
import type { Spool } from '../../src/spool/spool.js';

const entry = (id: string) => ({ id }) as QueueEntry;

describe('IntakeBuffer: the messages next in line', () => {
  // push: a message added; shift: the head taken for its attempt
  const cases: Array<{ name: string; steps: string[]; announced: string[] }> = [
    {
      name: 'the first ones as they come, within the window',
      steps: ['push a', 'push b', 'push c'],
      announced: ['a', 'b'],
    },
    {
      name: 'one past the window when the head is taken',
      steps: ['push a', 'push b', 'push c', 'push d', 'shift', 'shift'],
      announced: ['a', 'b', 'c', 'd'],
    },
    {
      name: 'none twice, and none when the list empties',
      steps: [
        'push a',
        'shift',
        'shift',
        'push b',
        'push c',
        'shift',
        'push d',
      ],
      announced: ['a', 'b', 'c', 'd'],
    },
  ];
  for (const { name, steps, announced } of cases) {
    it(name, () => {
      const seen: string[] = [];
      const buffer = new IntakeBuffer({
        spool: {} as Spool,
        log: createLogger({ level: 'error' }),
        concurrency: 2,
        onParked: () => undefined,
        onNext: e => seen.push(e.id),
      });
      for (const step of steps) {
        const [op, id] = step.split(' ');
        if (op === 'push') buffer.push(entry(id!));
        else buffer.shift();
      }
      expect(seen).to.deep.equal(announced);
    });
  }
});
