// Through the daemon: an inline image posted with no dangling cid:, a winmail.dat posted as its
// files (each once), broken or empty messages said in words.
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
    // the photo is recorded twice in the winmail.dat: posted once
    expect(
      names.filter(n => n === 'kitten-playing-with-a-christmas-tree.jpg'),
    ).to.have.length(1);
  });

  it('a message with no body: the content says so', async () => {
    const body = await post('headers-edge/mikelmail-empty_in_reply_to.eml');
    expect(body.content).to.equal(
      '<div>[mailbridge: this message has no body]</div>',
    );
    expect(body).to.not.have.property('attachments');
  });

  it('a multipart whose delimiter matches no boundary: said, and attached as it came', async () => {
    const file = 'malformed/flanker-mailformed-headers.eml';
    const body = await post(file);
    expect(body.content).to.include(
      'no part of this message could be read (its MIME structure is broken)',
    );
    expect(body.attachments?.map(a => a.name)).to.deep.equal(['original.eml']);
    // the message as received (line ends made CRLF by SMTP): its broken part is in it
    const raw = Buffer.from(body.attachments![0]!.file, 'base64').toString();
    expect(raw).to.include('----fa**f__fawf\r\nContent-Type: text/html;');
    expect(raw).to.include('\r\nHello\r\n');
  });

  it("a multipart whose declared boundary is never used: read with the body's delimiter", async () => {
    const body = await post('malformed/spamscope-mail_malformed_3.eml');
    expect(body.content).to.include('¡Feliz Navidad!');
    expect(body.content).to.include('<em>información</em> de la compañía');
  });

  it('flowed DelSp=yes text whose sender did not double its spaces: the words stay apart', async () => {
    const body = await post('plain/mimekit-issue1130.eml');
    expect(body.content).to.include('now there is a &quot;You do not');
    expect(body.content).to.include('at the bottom of the record');
  });
});
