// Unit tests of the Spool on a real temporary folder: commit, claim, move, take, remove, recover;
// and fresh messages (header line and raw bytes in one file in the claim folder).
import { expect } from 'chai';
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { RouteConfig } from '../../src/config/schema.js';
import { groupByRoute } from '../../src/routing/resolve-route.js';
import { receiveToFile } from '../../src/smtp/receive-to-file.js';
import {
  newQueueEntry,
  withReceived,
  type QueueEntry,
} from '../../src/spool/queue-entry.js';
import { spoolHeader } from '../../src/spool/spool-file.js';
import { fsyncDir } from '../../src/lib/durable-fs.js';
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

  it('init creates tmp/, msg/, queue/, active/, dead/ and held/, and may run again', async () => {
    await spool.init();
    expect(await listSpool(dir)).to.deep.equal({
      tmp: [],
      msg: [],
      queue: [],
      active: [],
      dead: [],
    });
    expect(await readdir(join(dir, 'held'))).to.deep.equal([]);
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
      damagedSegments: 0,
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
      damagedSegments: 0,
    });
  });
});

/** The state the SMTP side writes in front of the bytes (as it reads back from JSON). */
function initial(id: string): QueueEntry {
  const made = newQueueEntry({
    envelope: {
      id,
      mailFrom: 'jane@example.net',
      rcptTo: ['support@example.com'],
      receivedAt: new Date(NOW).toISOString(),
    },
    groups: groupByRoute(['support@example.com'], ROUTES),
    messageId: null,
    size: 0,
    now: NOW,
  });
  return JSON.parse(JSON.stringify(made)) as QueueEntry;
}

describe('Spool: fresh messages (one file in the claim folder)', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-fresh-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** The files of every folder of the spool, claim folders (active, active-<n>) included. */
  async function files(): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const folder of (await readdir(dir)).sort()) {
      if (folder === 'signal') continue;
      const names = await readdir(join(dir, folder), {
        recursive: true,
      }).catch(() => null);
      if (names) out[folder] = names.sort();
    }
    return out;
  }

  /** Every folder empty but those given. */
  function only(
    claimDir: string,
    filled: Record<string, string[]>,
  ): Record<string, string[]> {
    const empty: Record<string, string[]> = {
      active: [],
      dead: [],
      held: [],
      msg: [],
      queue: [],
      tmp: [],
      [claimDir]: [],
    };
    return { ...empty, ...filled };
  }

  /**
   * Accepts a message as the SMTP side does: received with its header line into tmp/, then
   * committed as fresh. Returns the entry the runner holds in memory, and the file's bytes.
   */
  async function accept(
    spool: Spool,
    id: string,
  ): Promise<{ entry: QueueEntry; bytes: Buffer }> {
    const first = initial(id);
    const header = spoolHeader(first);
    const received = await receiveToFile(
      Readable.from([Buffer.from(RAW)]),
      spool.tmpMessagePath(id),
      { durable: true, header },
    );
    await spool.commitFresh(id, received.path);
    return {
      entry: withReceived(first, received),
      bytes: Buffer.concat([header, Buffer.from(RAW)]),
    };
  }

  for (const claimDir of ['active', 'active-2']) {
    describe(`claim folder ${claimDir}/`, () => {
      let spool: Spool;
      beforeEach(async () => {
        spool = await new Spool(dir, claimDir).init();
      });

      it('commitFresh moves tmp/<id>.eml to <claim>/<id>.eml and leaves tmp/ empty', async () => {
        const { entry, bytes } = await accept(spool, 'F1');
        expect(await files()).to.deep.equal(
          only(claimDir, { [claimDir]: ['F1.eml'] }),
        );
        expect(spool.freshPath('F1')).to.equal(join(dir, claimDir, 'F1.eml'));
        expect((await readFile(spool.freshPath('F1'))).equals(bytes)).to.equal(
          true,
        );
        expect(entry.rawOffset).to.equal(bytes.length - RAW.length);
      });

      it('commitFresh into an unusable claim folder: rejects, and leaves nothing anywhere', async () => {
        // a file where the folder should be: root ignores permission bits, this it cannot
        await rm(join(dir, claimDir), { recursive: true });
        await writeFile(join(dir, claimDir), '');
        const tmp = spool.tmpMessagePath('F2');
        await writeFile(
          tmp,
          Buffer.concat([spoolHeader(initial('F2')), Buffer.from(RAW)]),
        );
        let failure: NodeJS.ErrnoException | undefined;
        await spool.commitFresh('F2', tmp).catch(err => (failure = err));
        expect(failure?.code).to.equal('ENOTDIR');
        expect(failure?.syscall).to.equal('rename');
        const listing = await files();
        delete listing[claimDir]; // a plain file now: readdir fails, files() skips it
        expect(listing).to.deep.equal(
          claimDir === 'active'
            ? { dead: [], held: [], msg: [], queue: [], tmp: [] }
            : { active: [], dead: [], held: [], msg: [], queue: [], tmp: [] },
        );
        expect(await readFile(join(dir, claimDir), 'utf8')).to.equal('');
      });

      it('ids lists a fresh id once, also while its parking is cut short (<id>.json and <id>.eml)', async () => {
        await accept(spool, 'F3');
        await accept(spool, 'F4');
        expect(await spool.ids('active')).to.deep.equal(['F3', 'F4']);
        expect(await spool.ids('queue')).to.deep.equal([]);
        // park got as far as writing the state on the claim
        const { entry } = await accept(spool, 'F5');
        await writeFile(
          join(dir, claimDir, 'F5.json'),
          JSON.stringify({ ...entry, attempts: 1 }),
        );
        expect((await files())[claimDir]).to.deep.equal([
          'F3.eml',
          'F4.eml',
          'F5.eml',
          'F5.json',
        ]);
        expect(await spool.ids('active')).to.deep.equal(['F3', 'F4', 'F5']);
      });

      it('read and find return a fresh entry with size, Message-ID and rawOffset filled in', async () => {
        const { entry } = await accept(spool, 'F6');
        expect(entry.size).to.equal(RAW.length);
        expect(entry.messageId).to.equal('<spool@example.net>');
        expect(await spool.read('active', 'F6')).to.deep.equal(entry);
        expect(await spool.find('F6')).to.deep.equal({
          state: 'active',
          entry,
        });
        expect(await spool.read('queue', 'F6')).to.equal(null);
        expect(await spool.list('active')).to.deep.equal([entry]);
        // another process (other claim folder) sees it as claimed too
        const other = new Spool(
          dir,
          claimDir === 'active' ? 'active-9' : 'active',
        );
        expect(await other.read('active', 'F6')).to.deep.equal(entry);
        expect(await spool.find('NOPE')).to.equal(null);
        // reading changes nothing on disk
        expect(await files()).to.deep.equal(
          only(claimDir, { [claimDir]: ['F6.eml'] }),
        );
      });

      it('locateRaw: the claim folder for a fresh id, msg/ for a parked one, null for a missing one', async () => {
        const { entry } = await accept(spool, 'F7');
        expect(await spool.locateRaw('F7')).to.equal(
          join(dir, claimDir, 'F7.eml'),
        );
        await spool.park(entry, 'queue');
        expect(await spool.locateRaw('F7')).to.equal(
          join(dir, 'msg', 'F7.eml'),
        );
        expect(await spool.locateRaw('NOPE')).to.equal(null);
        // a fresh message of another process's claim folder
        const other = await new Spool(dir, 'active-7').init();
        await accept(other, 'F8');
        expect(await spool.locateRaw('F8')).to.equal(
          join(dir, 'active-7', 'F8.eml'),
        );
      });

      it('recover() deletes a free/ folder left by an older version (its files were never mail)', async () => {
        await mkdir(join(dir, 'free', claimDir), { recursive: true });
        await writeFile(join(dir, 'free', claimDir, 'OLD'), 'a delivered file');
        await spool.recover(NOW);
        expect(await files()).to.deep.equal(only(claimDir, {}));
      });

      // Regression (review): a delivered file moved to free/ and being written over for a new
      // message when the power went could come back under its old name with the new bytes.
      it('requeueClaims removes a claim file whose header names another message', async () => {
        const { bytes } = await accept(spool, 'OLD1');
        const other = await accept(spool, 'NEW1');
        await spool.removeFresh('NEW1');
        await writeFile(spool.freshPath('OLD1'), other.bytes);
        expect(bytes.equals(other.bytes)).to.equal(false);
        expect(await spool.requeueClaims()).to.equal(1);
        expect(await files()).to.deep.equal(only(claimDir, {}));
      });

      it('removeFresh deletes <claim>/<id>.eml; a missing one is fine', async () => {
        await accept(spool, 'F9');
        await spool.removeFresh('F9');
        await spool.removeFresh('F9');
        expect(await files()).to.deep.equal(only(claimDir, {}));
        expect(await spool.find('F9')).to.equal(null);
      });

      for (const to of ['queue', 'dead', 'held'] as const) {
        it(`park(entry, '${to}'): raw file to msg/<id>.eml, the given state to ${to}/, nothing left in the claim`, async () => {
          const { entry, bytes } = await accept(spool, 'P1');
          const state: QueueEntry = {
            ...entry,
            attempts: 1,
            lastError: 'API HTTP 503',
            nextAttemptAt: NOW + 60_000,
            ...(to === 'dead'
              ? { dead: { reason: 'refused', at: new Date(NOW).toISOString() } }
              : {}),
            ...(to === 'held'
              ? { held: { reason: 'bulk', at: new Date(NOW).toISOString() } }
              : {}),
          };
          await spool.park(state, to);
          expect(await files()).to.deep.equal(
            only(claimDir, { msg: ['P1.eml'], [to]: ['P1.json'] }),
          );
          // the raw file keeps its header line: rawOffset still points at the message
          expect(
            (await readFile(spool.messagePath('P1'))).equals(bytes),
          ).to.equal(true);
          expect(
            JSON.parse(await readFile(join(dir, to, 'P1.json'), 'utf8')),
          ).to.deep.equal(state);
          expect(await spool.find('P1')).to.deep.equal({
            state: to,
            entry: state,
          });
          expect(await spool.ids('active')).to.deep.equal([]);
        });
      }

      it("releaseFresh without a state on the claim: 'parked' in queue/, due at `at`", async () => {
        const { entry } = await accept(spool, 'R1');
        const at = NOW + 30_000;
        expect(await spool.releaseFresh(entry, at)).to.equal('parked');
        expect(await files()).to.deep.equal(
          only(claimDir, { msg: ['R1.eml'], queue: ['R1.json'] }),
        );
        expect(await spool.read('queue', 'R1')).to.deep.equal({
          ...entry,
          nextAttemptAt: at,
        });
      });

      it("releaseFresh with a state on the claim (a parking cut short): 'released', that state kept, raw adopted", async () => {
        const { entry, bytes } = await accept(spool, 'R2');
        const newer = { ...entry, attempts: 1, lastError: 'API HTTP 502' };
        await writeFile(join(dir, claimDir, 'R2.json'), JSON.stringify(newer));
        expect(await spool.releaseFresh(entry, NOW + 30_000)).to.equal(
          'released',
        );
        expect(await files()).to.deep.equal(
          only(claimDir, { msg: ['R2.eml'], queue: ['R2.json'] }),
        );
        expect(await spool.read('queue', 'R2')).to.deep.equal(newer);
        expect(
          (await readFile(spool.messagePath('R2'))).equals(bytes),
        ).to.equal(true);
      });

      it('releaseFresh with the state on the claim and the raw file already in msg/: released', async () => {
        const { entry } = await accept(spool, 'R3');
        const newer = { ...entry, attempts: 2 };
        await writeFile(join(dir, claimDir, 'R3.json'), JSON.stringify(newer));
        await rename(spool.freshPath('R3'), spool.messagePath('R3'));
        expect(await spool.releaseFresh(entry, NOW)).to.equal('released');
        expect(await files()).to.deep.equal(
          only(claimDir, { msg: ['R3.eml'], queue: ['R3.json'] }),
        );
        expect(await spool.read('queue', 'R3')).to.deep.equal(newer);
      });

      it('requeueClaims: a fresh .eml -> queue/ from its header; .eml + .json -> raw to msg/, state to queue/ or dead/; a .eml without a whole header -> removed', async () => {
        // (a) fresh, alone: parked with the state of its header line
        const fresh = await accept(spool, 'Q1');
        // (b) a parking cut short after its state was written on the claim
        const cut = await accept(spool, 'Q2');
        const cutState = {
          ...cut.entry,
          attempts: 1,
          lastError: 'API HTTP 503',
        };
        await writeFile(
          join(dir, claimDir, 'Q2.json'),
          JSON.stringify(cutState),
        );
        // (b) the same, on its way to dead/
        const dying = await accept(spool, 'Q3');
        const deadState = {
          ...dying.entry,
          attempts: 1,
          dead: {
            reason: 'refused: API HTTP 400',
            at: new Date(NOW).toISOString(),
          },
        };
        await writeFile(
          join(dir, claimDir, 'Q3.json'),
          JSON.stringify(deadState),
        );
        // (c) no whole header line: never committed
        await writeFile(
          join(dir, claimDir, 'Q4.eml'),
          spoolHeader(initial('Q4')).subarray(0, 30),
        );
        await writeFile(join(dir, claimDir, 'Q5.eml'), RAW);

        expect(await spool.requeueClaims()).to.equal(5);
        expect(await files()).to.deep.equal(
          only(claimDir, {
            msg: ['Q1.eml', 'Q2.eml', 'Q3.eml'],
            queue: ['Q1.json', 'Q2.json'],
            dead: ['Q3.json'],
          }),
        );
        expect(await spool.read('queue', 'Q1')).to.deep.equal(fresh.entry);
        expect(await spool.read('queue', 'Q2')).to.deep.equal(cutState);
        expect(await spool.read('dead', 'Q3')).to.deep.equal(deadState);
        expect(
          (await readFile(spool.messagePath('Q1'))).equals(fresh.bytes),
        ).to.equal(true);
        // nothing left to take back
        expect(await spool.requeueClaims()).to.equal(0);
      });

      it('recover: fresh claims parked; a msg/<id>.eml with no state anywhere removed, header or not', async () => {
        const { entry } = await accept(spool, 'V1');
        // a whole file (header line and bytes) in msg/ with no state anywhere: the rest of a
        // purge or a delivery cut short (they drop the state first), or of an inject that
        // never said "queued as"; a parking always writes its state on the claim first
        await accept(spool, 'V2');
        await rename(spool.freshPath('V2'), spool.messagePath('V2'));
        // ...and an old-format raw file whose commit never finished
        await writeFile(spool.messagePath('V3'), RAW);
        await writeFile(join(dir, 'tmp', 'V4.eml'), 'Subject: half');

        expect(await spool.recover(NOW)).to.deep.equal({
          removedTmp: 1,
          requeued: 1,
          orphans: 2,
          missingRaw: 0,
          damagedSegments: 0,
        });
        expect(await files()).to.deep.equal(
          only(claimDir, { msg: ['V1.eml'], queue: ['V1.json'] }),
        );
        expect(await spool.read('queue', 'V1')).to.deep.equal(entry);
        expect(await spool.recover(NOW)).to.deep.equal({
          removedTmp: 0,
          requeued: 0,
          orphans: 0,
          missingRaw: 0,
          damagedSegments: 0,
        });
      });
    });
  }

  it('recover takes back fresh claims of every claim folder', async () => {
    const a = await accept(await new Spool(dir).init(), 'C1');
    const b = await accept(await new Spool(dir, 'active-2').init(), 'C2');
    const spool = new Spool(dir, 'active-3');
    await spool.init();
    const report = await spool.recover(NOW);
    expect(report).to.deep.equal({
      removedTmp: 0,
      requeued: 2,
      orphans: 0,
      missingRaw: 0,
      damagedSegments: 0,
    });
    expect(await files()).to.deep.equal({
      active: [],
      'active-2': [],
      'active-3': [],
      dead: [],
      held: [],
      msg: ['C1.eml', 'C2.eml'],
      queue: ['C1.json', 'C2.json'],
      tmp: [],
    });
    expect(await spool.read('queue', 'C1')).to.deep.equal(a.entry);
    expect(await spool.read('queue', 'C2')).to.deep.equal(b.entry);
  });

  // A dead state left on the claim (a park(entry, 'dead') that failed after writing it) goes to
  // queue/ as it is: the next attempt files it dead again, with its log line. (requeueClaims, at
  // a start, finishes the move into dead/ instead.)
  it('releaseFresh with a dead state on the claim: released to queue/ as it is, raw adopted', async () => {
    const spool = await new Spool(dir).init();
    const { entry } = await accept(spool, 'D1');
    const dead = {
      ...entry,
      attempts: 1,
      dead: {
        reason: 'refused: API HTTP 400',
        at: new Date(NOW).toISOString(),
      },
    };
    await writeFile(join(dir, 'active', 'D1.json'), JSON.stringify(dead));
    expect(await spool.releaseFresh(entry, NOW)).to.equal('released');
    expect(await files()).to.deep.equal(
      only('active', { msg: ['D1.eml'], queue: ['D1.json'] }),
    );
    expect(await spool.read('queue', 'D1')).to.deep.equal(dead);
  });

  // Regression: readSpoolFile gave up on a header line over 1 MiB and returned null, which
  // recovery takes for "never committed" and deletes; with many long recipients (no cap on
  // smtp.maxRecipients) a message that had been answered 250 vanished at the next start.
  it('requeueClaims keeps a committed fresh message whose header line is over 1 MiB', async () => {
    const spool = await new Spool(dir).init();
    const rcptTo = Array.from(
      { length: 2500 },
      (_, i) => `${'r'.repeat(230)}-${String(i).padStart(4, '0')}@example.com`,
    );
    const first = newQueueEntry({
      envelope: {
        id: 'W1',
        mailFrom: 'jane@example.net',
        rcptTo,
        receivedAt: new Date(NOW).toISOString(),
      },
      groups: groupByRoute(rcptTo, ROUTES),
      messageId: null,
      size: 0,
      now: NOW,
    });
    const header = spoolHeader(first);
    expect(header.length).to.be.greaterThan(1024 * 1024);
    const tmp = spool.tmpMessagePath('W1');
    await writeFile(tmp, Buffer.concat([header, Buffer.from(RAW)]));
    await spool.commitFresh('W1', tmp);
    expect(await spool.requeueClaims()).to.equal(1);
    expect(await files()).to.deep.equal(
      only('active', { msg: ['W1.eml'], queue: ['W1.json'] }),
    );
  });

  it('requeueClaims takes only the folders given (default: its own)', async () => {
    const mine = new Spool(dir, 'active-2');
    await mine.init();
    await accept(await new Spool(dir).init(), 'O1');
    await accept(mine, 'O2');
    expect(await mine.requeueClaims()).to.equal(1);
    expect(await files()).to.deep.equal({
      active: ['O1.eml'],
      'active-2': [],
      dead: [],
      held: [],
      msg: ['O2.eml'],
      queue: ['O2.json'],
      tmp: [],
    });
  });
});

describe('Spool: fresh small messages in the journal', () => {
  let dir: string;
  let spool: Spool;
  const raw = Buffer.from(RAW);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailbridge-journal-spool-'));
    spool = await new Spool(dir).init();
  });
  afterEach(async () => {
    spool.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Accepts a small message as the SMTP side does: its entry, then its journal record. */
  async function accept(s: Spool, id: string): Promise<QueueEntry> {
    const received = {
      size: raw.length,
      messageId: '<spool@example.net>',
      offset: 0,
    };
    return s.journalFresh(withReceived(initial(id), received), raw);
  }

  /** The journal segments of a claim folder. */
  async function segments(folder = 'active'): Promise<string[]> {
    return (await readdir(join(dir, folder))).filter(n =>
      n.startsWith('journal-'),
    );
  }

  it('journalFresh: one record in a segment of the claim folder; the entry says where its raw bytes lie', async () => {
    const entry = await accept(spool, 'J1');
    const [segment, ...more] = await segments();
    expect(more).to.deep.equal([]);
    expect(spool.freshRawPath('J1')).to.equal(join(dir, 'active', segment!));
    const bytes = await readFile(join(dir, 'active', segment!));
    expect(
      bytes
        .subarray(entry.rawOffset!, entry.rawOffset! + entry.rawLength!)
        .equals(raw),
    ).to.equal(true);
    expect(spool.journaled).to.equal(1);
    // nothing else is written for it: no file of its own, nothing in tmp/, msg/ or queue/
    const listing = await listSpool(dir);
    expect(listing.tmp).to.deep.equal([]);
    expect(listing.msg).to.deep.equal([]);
    expect(listing.queue).to.deep.equal([]);
  });

  it("another process (an operator's command) sees it: ids, read, find and locateRaw", async () => {
    await accept(spool, 'J2');
    const cli = await new Spool(dir).init();
    expect(await cli.ids('active')).to.deep.equal(['J2']);
    const found = await cli.find('J2');
    expect(found?.state).to.equal('active');
    expect(found?.entry.id).to.equal('J2');
    expect(found?.entry.messageId).to.equal('<spool@example.net>');
    expect(found?.entry.size).to.equal(raw.length);
    expect(await cli.locateRaw('J2')).to.equal(spool.freshRawPath('J2'));
    expect(await cli.locateRaw('NONE')).to.equal(null);
  });

  it('removeFresh marks it done: gone from ids and find; the next message goes on in the same segment', async () => {
    await accept(spool, 'J3');
    await spool.removeFresh('J3');
    expect(spool.journaled).to.equal(0);
    expect(await spool.ids('active')).to.deep.equal([]);
    expect(await spool.find('J3')).to.equal(null);
    await accept(spool, 'J4');
    expect(await segments()).to.have.length(1);
    expect(await spool.ids('active')).to.deep.equal(['J4']);
  });

  for (const to of ['queue', 'dead', 'held'] as const) {
    it(`park(entry, '${to}'): the raw bytes alone in msg/, the state in ${to}/ without journal offsets, the record done`, async () => {
      const entry = await accept(spool, 'JP');
      await spool.park({ ...entry, attempts: 1 }, to);
      expect((await readFile(spool.messagePath('JP'))).equals(raw)).to.equal(
        true,
      );
      const state = JSON.parse(
        await readFile(join(dir, to, 'JP.json'), 'utf8'),
      ) as QueueEntry;
      expect(state.attempts).to.equal(1);
      expect(state.rawOffset).to.equal(undefined);
      expect(state.rawLength).to.equal(undefined);
      expect(spool.journaled).to.equal(0);
      expect(await spool.ids('active')).to.deep.equal([]);
      expect(await spool.find('JP')).to.deep.include({ state: to });
      expect((await listSpool(dir)).tmp).to.deep.equal([]);
    });
  }

  it('releaseFresh parks a journaled message in queue/, due at `at`', async () => {
    const entry = await accept(spool, 'JR');
    expect(await spool.releaseFresh(entry, NOW + 5000)).to.equal('parked');
    expect((await spool.read('queue', 'JR'))?.nextAttemptAt).to.equal(
      NOW + 5000,
    );
    expect(spool.journaled).to.equal(0);
  });

  it('requeueClaims parks what a closed journal left in queue/ (the header state, the raw bytes) and deletes its segments', async () => {
    await accept(spool, 'L1');
    await accept(spool, 'L2');
    await accept(spool, 'L3');
    await spool.removeFresh('L2');
    spool.close();
    const next = await new Spool(dir).init();
    expect(await next.requeueClaims()).to.equal(2);
    expect(await segments()).to.deep.equal([]);
    expect(await next.ids('queue')).to.deep.equal(['L1', 'L3']);
    const l1 = await next.read('queue', 'L1');
    expect(l1?.messageId).to.equal('<spool@example.net>');
    expect(l1?.rawOffset).to.equal(undefined);
    expect((await readFile(next.messagePath('L3'))).equals(raw)).to.equal(true);
  });

  it('requeueClaims keeps a newer state already in queue/ or dead/ (a parking whose done mark was lost)', async () => {
    const a = await accept(spool, 'K1');
    const b = await accept(spool, 'K2');
    spool.close();
    // parked before the crash, the records' marks never written
    for (const [to, entry] of [
      ['queue', { ...a, attempts: 3 }],
      ['dead', { ...b, attempts: 4 }],
    ] as const) {
      await writeFile(join(dir, 'msg', `${entry.id}.eml`), RAW);
      await writeFile(join(dir, to, `${entry.id}.json`), JSON.stringify(entry));
    }
    const next = await new Spool(dir).init();
    expect(await next.requeueClaims()).to.equal(0);
    expect((await next.read('queue', 'K1'))?.attempts).to.equal(3);
    expect((await next.read('dead', 'K2'))?.attempts).to.equal(4);
    expect(await segments()).to.deep.equal([]);
  });

  it("requeueClaims never takes this process's own live journal", async () => {
    await accept(spool, 'OWN');
    expect(await spool.requeueClaims()).to.equal(0);
    expect(spool.journaled).to.equal(1);
    expect(await segments()).to.have.length(1);
  });

  it('find and list show a journaled message with where its raw bytes lie in the segment (queue show)', async () => {
    await accept(spool, 'S1');
    await accept(spool, 'S2');
    const cli = await new Spool(dir).init();
    const found = await cli.find('S2');
    const path = (await cli.locateRaw('S2'))!;
    const bytes = await readFile(path);
    const { rawOffset, rawLength } = found!.entry;
    expect(
      bytes.subarray(rawOffset!, rawOffset! + rawLength!).equals(raw),
    ).to.equal(true);
    const listed = await cli.list('active');
    expect(listed.map(e => [e.id, e.rawLength])).to.deep.equal([
      ['S1', raw.length],
      ['S2', raw.length],
    ]);
  });

  // Regression (reviews): a parking whose rename into dead/ succeeded but whose fsync of dead/
  // failed was done again from the accept-time state (the message in dead/ and queue/); and
  // deciding that from the folders re-parked a message another process had taken meanwhile.
  it('releaseFresh after a parking whose folder fsync failed: only that fsync again, whatever the folders hold now', async () => {
    let failDead = true;
    const flaky = await new Spool(dir, 'active', async path => {
      if (failDead && path === join(dir, 'dead')) {
        failDead = false;
        throw Object.assign(new Error('EIO: i/o error, fsync'), {
          code: 'EIO',
        });
      }
      return fsyncDir(path);
    }).init();
    const entry = await accept(flaky, 'RF');
    const dead = {
      ...entry,
      attempts: 1,
      dead: { reason: 'refused', at: 'now' },
    };
    let failure: unknown;
    await flaky.park(dead, 'dead').catch((err: unknown) => (failure = err));
    expect((failure as NodeJS.ErrnoException).code).to.equal('EIO');
    expect(flaky.journaled).to.equal(1);
    // meanwhile an operator purges it from dead/ (or, from queue/, another worker claims it)
    await rm(join(dir, 'dead', 'RF.json'));
    await rm(flaky.messagePath('RF'));
    expect(await flaky.releaseFresh(entry, NOW)).to.equal('released');
    expect(flaky.journaled).to.equal(0);
    const listing = await listSpool(dir);
    expect(listing.queue).to.deep.equal([]);
    expect(listing.dead).to.deep.equal([]);
    expect(listing.msg).to.deep.equal([]);
    flaky.close();
  });

  it('ids lists a journaled message once, where its state is when its parking left a state', async () => {
    const entry = await accept(spool, 'DUP');
    await writeFile(join(dir, 'queue', 'DUP.json'), JSON.stringify(entry));
    await writeFile(join(dir, 'active', 'DUP.json'), JSON.stringify(entry));
    expect(await spool.ids('active')).to.deep.equal(['DUP']);
    await rm(join(dir, 'active', 'DUP.json'));
    expect(await spool.ids('active')).to.deep.equal([]);
    expect(await spool.ids('queue')).to.deep.equal(['DUP']);
  });

  // Regression (review): a second parking of a message no longer in the journal (two scans
  // parking it at once) wrote its state with the journal's offsets over a raw-only msg/ file.
  it('park of an entry whose journal record is done already changes nothing', async () => {
    const entry = await accept(spool, 'P2');
    await spool.park({ ...entry, attempts: 1 }, 'queue');
    await spool.park({ ...entry, attempts: 2 }, 'queue');
    const state = await spool.read('queue', 'P2');
    expect(state?.attempts).to.equal(1);
    expect(state?.rawOffset).to.equal(undefined);
    expect((await listSpool(dir)).active).to.deep.equal([]);
  });

  // Regression (review): recovery parked a record again while another process held the
  // message claimed (parked by the dead process, claimed by a live one before the mark).
  it('requeueClaims leaves a record whose message another claim folder holds', async () => {
    const dying = await new Spool(dir, 'active-1').init();
    const entry = await accept(dying, 'CL');
    dying.close();
    await writeFile(spool.messagePath('CL'), raw);
    await mkdir(join(dir, 'active-2'), { recursive: true });
    await writeFile(join(dir, 'active-2', 'CL.json'), JSON.stringify(entry));
    const next = await new Spool(dir, 'active-1').init();
    expect(await next.requeueClaims()).to.equal(0);
    expect(await next.ids('queue')).to.deep.equal([]);
    expect(await segments('active-1')).to.deep.equal([]);
  });

  it('recover(): a damaged segment (whole records after unreadable bytes) is parked as far as it reads and kept as .damaged', async () => {
    await accept(spool, 'D1');
    await accept(spool, 'D2');
    await accept(spool, 'D3');
    spool.close();
    const [segment] = await segments();
    const path = join(dir, 'active', segment!);
    const bytes = await readFile(path);
    // a flipped byte in D2's raw bytes, D3 whole after it
    const at = bytes.indexOf('Hi.', bytes.indexOf('M D2 '));
    bytes[at] = bytes[at]! ^ 1;
    await writeFile(path, bytes);
    const next = await new Spool(dir).init();
    const damaged: string[] = [];
    const report = await next.recover(NOW, damaged);
    expect(report.requeued).to.equal(2);
    expect(report.damagedSegments).to.equal(1);
    expect(damaged).to.deep.equal([`${path}.damaged`]);
    expect(await next.ids('queue')).to.deep.equal(['D1', 'D3']);
    expect(await readdir(join(dir, 'active'))).to.deep.equal([
      `${segment!}.damaged`,
    ]);
  });

  // Regression (review): a segment whose salt line was damaged read as empty and was deleted,
  // every message in it with it.
  it('recover(): a segment whose first line is damaged is kept as .damaged, not deleted', async () => {
    await accept(spool, 'H1');
    spool.close();
    const [segment] = await segments();
    const path = join(dir, 'active', segment!);
    const bytes = await readFile(path);
    bytes[5] = 0x7a; // a letter where the salt has hex digits
    await writeFile(path, bytes);
    const next = await new Spool(dir).init();
    const report = await next.recover(NOW);
    expect(report.damagedSegments).to.equal(1);
    expect(await readdir(join(dir, 'active'))).to.deep.equal([
      `${segment!}.damaged`,
    ]);
  });

  it('stopAccepting: new messages are refused (journaled or committed); those held are still marked done', async () => {
    await accept(spool, 'SA1');
    spool.stopAccepting();
    const failures: string[] = [];
    await accept(spool, 'SA2').catch((err: Error) =>
      failures.push(err.message),
    );
    await spool
      .commitFresh('SA3', spool.tmpMessagePath('SA3'))
      .catch((err: Error) => failures.push(err.message));
    expect(failures).to.deep.equal([
      'spool no longer accepting',
      'spool no longer accepting',
    ]);
    await spool.removeFresh('SA1');
    expect(spool.journaled).to.equal(0);
    expect(await spool.ids('active')).to.deep.equal([]);
  });

  it('recover() parks the journals of every claim folder, a torn tail ignored', async () => {
    const other = await new Spool(dir, 'active-2').init();
    await accept(spool, 'R1');
    await accept(other, 'R2');
    spool.close();
    other.close();
    // a crash cut the last append short: half a frame after the whole records
    const [segment] = await segments('active-2');
    await writeFile(join(dir, 'active-2', segment!), 'M R3 999 abc\nFrom: ', {
      flag: 'a',
    });
    const next = await new Spool(dir).init();
    const report = await next.recover(NOW);
    expect(report.requeued).to.equal(2);
    expect(await next.ids('queue')).to.deep.equal(['R1', 'R2']);
    expect(await segments('active')).to.deep.equal([]);
    expect(await segments('active-2')).to.deep.equal([]);
  });
});
