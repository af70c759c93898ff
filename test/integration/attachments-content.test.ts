// Through the daemon: an inline image posted with no dangling cid:, a winmail.dat posted as its files.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { apiAt, useBridge, type TestBridge } from '../helpers/bridge.js';
import { sendRaw } from '../helpers/smtp-client.js';

const CORPUS = fileURLToPath(new URL('../fixtures/corpus/', import.meta.url));

type Body = {
  content?: string;
  attachments?: Array<{ name: string; file: string }>;
};

describe('attachments and inline images, through the daemon', () => {
  const t = useBridge();

  /** A daemon in sync mode: the body is posted before the 250. */
  async function bridge(): Promise<TestBridge> {
    return t.start({
      api: apiAt(t.api.url),
      delivery: { mode: 'sync' },
      routes: [{ match: 'support@example.com', mailbox_id: 'mb-support' }],
    });
  }

  /** Sends a corpus file as it is (its bytes), expects 250 and returns the body posted. */
  async function post(file: string): Promise<Body> {
    const running = await bridge();
    const result = await sendRaw({
      port: running.smtpPort,
      to: ['support@example.com'],
      raw: readFileSync(`${CORPUS}${file}`),
    });
    expect(result.code, result.response).to.equal(250);
    const [request] = await t.api.waitForRequests(1);
    return request!.body as Body;
  }

  it('an Apple Mail message with a cid: image: shown as a data: URL, and its attachment', async () => {
    const body = await post('html/deltachat-apple_cid_jpg.eml');
    expect(body.content).to.not.match(/cid:/i);
    expect(body.attachments?.map(a => a.name)).to.deep.equal(['small.jpg']);
    const jpeg = body.attachments![0]!.file;
    expect(body.content).to.include(`src="data:image/jpeg;base64,${jpeg}"`);
    expect([...Buffer.from(jpeg, 'base64').subarray(0, 3)]).to.deep.equal([
      0xff, 0xd8, 0xff,
    ]);
  });

  it('a winmail.dat: posted as the files it carries, not opaque', async () => {
    const body = await post('tnef/mimekit-rich-text.eml');
    const names = body.attachments?.map(a => a.name) ?? [];
    expect(names).to.not.include('winmail.dat');
    expect(names[0]).to.equal('kitten-playing-with-a-christmas-tree.jpg');
    expect(Buffer.from(body.attachments![0]!.file, 'base64')).to.have.length(
      375081,
    );
    expect(body.content).to.include('Christmas to remember');
  });
});
