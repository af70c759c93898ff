// Unit tests of the Spool on a real temporary folder: commit, claim, move, take, remove, recover.
import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RouteConfig } from '../../src/config/schema.js';
import { groupByRoute } from '../../src/routing/resolve-route.js';
import { newQueueEntry, type QueueEntry } from '../../src/spool/queue-entry.js';
import { Spool } from '../../src/spool/spool.js';
import { listSpool, writeSpooledEntry } from '../helpers/queue-tools.js';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const ROUTES: RouteConfig[] = [
  { match: '*', thread_from_subaddress: false, fields: {} },
];
const RAW = 'Subject: spool\r\nMessage-ID: <spool@example.net>\r\n\r\nHi.\r\n';

describe('Spool', () => {
  let dir: string;
  let spool: Spool;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-spool-'));
    spool = await new Spool(dir).init();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A new entry as it reads back from disk (undefined fields dropped). */
  function entry(id: string): QueueEntry {
    const fresh = newQueueEntry({
      envelope: {
        id,
        mailFrom: 'jane@example.net',
        rcptTo: ['support@example.com'],
        receivedAt: new Date(NOW).toISOString(),
      },
      groups: groupByRoute(['support@example.com'], ROUTES),
      messageId: '<spool@example.net>',
      size: RAW.length,
      now: NOW,
    });
    return JSON.parse(JSON.stringify(fresh)) as QueueEntry;
  }

  /** A received message in tmp/, as the SMTP side leaves it before commit. */
  async function received(id: string): Promise<string> {
    const path = spool.tmpMessagePath(id);
    await writeFile(path, RAW);
    return path;
  }

  async function committed(id: string, into: 'queue' | 'active' = 'queue') {
    const e = entry(id);
    await spool.commit(e, await received(id), into);
    return e;
  }

  it('init creates tmp/, msg/, queue/, active/ and dead/, and may run again', async () => {
    await spool.init();
    expect(await listSpool(dir)).to.deep.equal({
      tmp: [],
      msg: [],
      queue: [],
      active: [],
      dead: [],
    });
  });

  for (const into of ['queue', 'active'] as const) {
    it(`commit into ${into}/: raw bytes in msg/, state in ${into}/, tmp/ empty`, async () => {
      const e = await committed('ID1', into);
      const listing = await listSpool(dir);
      expect(listing.tmp).to.deep.equal([]);
      expect(listing.msg).to.deep.equal(['ID1.eml']);
      expect(listing[into]).to.deep.equal(['ID1.json']);
      expect(await readFile(spool.messagePath('ID1'), 'utf8')).to.equal(RAW);
      expect(await spool.read(into, 'ID1')).to.deep.equal(e);
    });
  }

  for (const broken of ['msg', 'queue'] as const) {
    it(`commit with ${broken}/ unusable: rejects with the failed rename and leaves nothing`, async () => {
      // a file where the folder should be: root ignores permission bits, this it cannot
      await rm(join(dir, broken), { recursive: true });
      await writeFile(join(dir, broken), '');
      const tmp = await received('ID2');
      let failure: NodeJS.ErrnoException | undefined;
      await spool.commit(entry('ID2'), tmp).catch(err => (failure = err));
      expect(failure?.code).to.equal('ENOTDIR');
      expect(failure?.syscall).to.equal('rename');
      const listing = await listSpool(dir);
      expect(listing.tmp).to.deep.equal([]);
      expect(listing.msg).to.deep.equal([]);
      expect(listing.queue).to.deep.equal([]);
    });
  }

  it('claim moves queue/ -> active/ once; a second claim gets null', async () => {
    const e = await committed('ID3');
    expect(await spool.claim('ID3')).to.deep.equal(e);
    expect(await spool.claim('ID3')).to.equal(null);
    const listing = await listSpool(dir);
    expect(listing.queue).to.deep.equal([]);
    expect(listing.active).to.deep.equal(['ID3.json']);
    expect(await spool.claim('NOPE')).to.equal(null);
  });

  it('move writes the new state and drops the old one', async () => {
    const e = await committed('ID4', 'active');
    const next = { ...e, attempts: 1, lastError: 'API HTTP 503' };
    await spool.move(next, 'active', 'queue');
    expect(await spool.read('active', 'ID4')).to.equal(null);
    expect(await spool.read('queue', 'ID4')).to.deep.equal(next);
    expect((await spool.find('ID4'))?.state).to.equal('queue');
    expect(await spool.find('NOPE')).to.equal(null);
  });

  it('move into an unusable folder: rejects, the entry stays claimed in active/, tmp/ stays empty', async () => {
    const e = await committed('ID7', 'active');
    await rm(join(dir, 'dead'), { recursive: true });
    await writeFile(join(dir, 'dead'), '');
    let failure: NodeJS.ErrnoException | undefined;
    await spool
      .move({ ...e, attempts: 1 }, 'active', 'dead')
      .catch(err => (failure = err));
    expect(failure?.code).to.equal('ENOTDIR');
    // the new state is written over the caller's own claim first, then renamed
    expect(await spool.read('active', 'ID7')).to.deep.equal({
      ...e,
      attempts: 1,
    });
    expect((await listSpool(dir)).tmp).to.deep.equal([]);
  });

  // Regression: move wrote queue/<id> and only then unlinked active/<id>. In between, another
  // process could claim queue/<id> into active/<id>, and the unlink deleted that claim: the
  // claimer read nothing, and recovery removed the raw message as an orphan (a lost message).
  it('move is rename-only between folders: a claim right after it gets the whole entry', async () => {
    const e = await committed('ID8', 'active');
    const next = { ...e, attempts: 1, lastError: 'API HTTP 503' };
    await spool.move(next, 'active', 'queue');
    const other = new Spool(dir);
    expect(await other.claim('ID8')).to.deep.equal(next);
    const listing = await listSpool(dir);
    expect(listing.queue).to.deep.equal([]);
    expect(listing.active).to.deep.equal(['ID8.json']);
    expect(listing.msg).to.deep.equal(['ID8.eml']);
  });

  it('recover finishes a move to dead/ that a crash cut short', async () => {
    const e = await committed('ID9', 'active');
    const dead = {
      ...e,
      dead: {
        reason: 'refused: API HTTP 400',
        at: new Date(NOW).toISOString(),
      },
    };
    // the new state written over the claim, the rename into dead/ not done yet
    await writeFile(join(dir, 'active', 'ID9.json'), JSON.stringify(dead));
    await spool.recover(NOW);
    expect(await spool.read('dead', 'ID9')).to.deep.equal(dead);
    expect(await spool.read('queue', 'ID9')).to.equal(null);
    expect((await listSpool(dir)).msg).to.deep.equal(['ID9.eml']);
  });

  it('release hands a claim back to queue/; a newer state in queue/ wins', async () => {
    const e = await committed('ID8');
    await spool.claim('ID8');
    expect(await spool.release('ID8')).to.equal(true);
    expect(await spool.read('queue', 'ID8')).to.deep.equal(e);
    expect(await spool.read('active', 'ID8')).to.equal(null);

    // a move that wrote queue/ but could not drop active/: queue/ is the newer state
    await spool.claim('ID8');
    const newer = { ...e, attempts: 1 };
    await spool.move(newer, null, 'queue');
    expect(await spool.release('ID8')).to.equal(true);
    expect(await spool.read('queue', 'ID8')).to.deep.equal(newer);
    expect(await spool.read('active', 'ID8')).to.equal(null);

    expect(await spool.release('ID8')).to.equal(false);
  });

  it('take hands the entry to the caller and leaves no state behind', async () => {
    const e = await committed('ID5');
    expect(await spool.take('ID5', 'dead')).to.equal(null);
    expect(await spool.take('ID5', 'queue')).to.deep.equal(e);
    const listing = await listSpool(dir);
    expect(listing.queue).to.deep.equal([]);
    expect(listing.tmp).to.deep.equal([]);
    expect(listing.msg).to.deep.equal(['ID5.eml']);
  });

  it('remove deletes the state and the raw message', async () => {
    await committed('ID6', 'active');
    await spool.remove('ID6', 'active');
    expect(await listSpool(dir)).to.deep.include({ msg: [], active: [] });
  });

  it('ids and list are sorted by id, and list skips what vanished', async () => {
    for (const id of ['B2', 'A1', 'C3']) await committed(id);
    expect(await spool.ids('queue')).to.deep.equal(['A1', 'B2', 'C3']);
    await writeFile(join(dir, 'queue', 'ignored.txt'), 'x');
    expect((await spool.list('queue')).map(e => e.id)).to.deep.equal([
      'A1',
      'B2',
      'C3',
    ]);
  });

  it('recover: tmp/ emptied, active/ requeued, orphans removed, missing raw -> dead', async () => {
    const write = (id: string, state: 'queue' | 'active' | 'dead') =>
      writeSpooledEntry({
        dir,
        id,
        raw: RAW,
        rcptTo: ['support@example.com'],
        routes: ROUTES,
        messageId: '<spool@example.net>',
        state,
        now: NOW,
      });
    await write('ACTIVE', 'active');
    // both a claimed and a waiting state: the waiting one is the newer
    const both = await write('BOTH', 'queue');
    await writeFile(
      join(dir, 'active', 'BOTH.json'),
      JSON.stringify({ ...both, attempts: 99 }),
    );
    await write('DEAD', 'dead');
    await write('NORAW', 'queue');
    await rm(join(dir, 'msg', 'NORAW.eml'));
    await writeFile(join(dir, 'tmp', 'HALF.eml'), 'Subject: half');
    await writeFile(join(dir, 'tmp', 'HALF.1.2.json'), '{');
    await writeFile(join(dir, 'msg', 'ORPHAN.eml'), RAW);

    const report = await spool.recover(NOW);
    expect(report).to.deep.equal({
      removedTmp: 2,
      requeued: 2,
      orphans: 1,
      missingRaw: 1,
    });
    const listing = await listSpool(dir);
    expect(listing.tmp).to.deep.equal([]);
    expect(listing.active).to.deep.equal([]);
    expect(listing.queue.sort()).to.deep.equal(['ACTIVE.json', 'BOTH.json']);
    expect(listing.dead.sort()).to.deep.equal(['DEAD.json', 'NORAW.json']);
    expect(listing.msg.sort()).to.deep.equal([
      'ACTIVE.eml',
      'BOTH.eml',
      'DEAD.eml',
    ]);
    expect((await spool.read('queue', 'BOTH'))?.attempts).to.equal(0);
    expect((await spool.read('dead', 'NORAW'))?.dead).to.deep.equal({
      reason: 'raw message missing from the spool',
      at: new Date(NOW).toISOString(),
    });

    // a clean spool: nothing to mend the second time
    expect(await spool.recover(NOW)).to.deep.equal({
      removedTmp: 0,
      requeued: 0,
      orphans: 0,
      missingRaw: 0,
    });
  });
});
