// Inline images: which part an <img> names, which are shown within the budget, and the HTML
// rewritten so that no cid: is left dangling.
import { expect } from 'chai';
import { resolveInlineImages } from '../../src/map/cid.js';
import { sanitizeMailHtml } from '../../src/map/html.js';
import { attachmentName } from '../../src/parse/attachment-names.js';
import {
  INLINE_IMAGE_MAX_BYTES,
  INLINE_IMAGES_MAX_BYTES,
  cidOf,
  imagesToShow,
  referencedAttachment,
  referencedImages,
} from '../../src/parse/inline-images.js';
import type { ParsedAttachment } from '../../src/parse/parsed-message.js';

function part(over: Partial<ParsedAttachment>): ParsedAttachment {
  return {
    filename: 'logo.png',
    contentType: 'image/png',
    path: '/nonexistent/att-1.bin',
    size: 100,
    ...over,
  };
}

const DOT = 'data:image/png;base64,iVBORw0KGgo=';

describe('inline images', () => {
  describe('cidOf', () => {
    const rows: Array<[string, string | undefined]> = [
      ['cid:logo@x', 'logo@x'],
      ['CID:Logo@X', 'Logo@X'],
      ['cid:a%40b', 'a@b'],
      ['cid:<a@b>', 'a@b'],
      ['cid:100%', '100%'],
      [' cid:a@b', 'a@b'],
      ['https://x.example/cid:a', undefined],
      ['logo.png', undefined],
    ];
    for (const [src, id] of rows) {
      it(`${JSON.stringify(src)} -> ${String(id)}`, () => {
        expect(cidOf(src)).to.equal(id);
      });
    }
  });

  describe('referencedAttachment', () => {
    const parts = [
      part({ filename: 'a.png', contentId: 'A@Example' }),
      part({ filename: 'b.png', contentLocation: 'image1' }),
      part({ filename: 'c.png' }),
    ];
    const rows: Array<[string, string | undefined]> = [
      ['cid:a@example', 'a.png'],
      ['cid:A@Example', 'a.png'],
      ['cid:missing@x', undefined],
      ['image1', 'b.png'],
      ['Image1', undefined],
      ['https://e.example/c.png', undefined],
      ['', undefined],
    ];
    for (const [src, name] of rows) {
      it(`${JSON.stringify(src)} -> ${String(name)}`, () => {
        expect(referencedAttachment(src, parts)?.filename).to.equal(name);
      });
    }
  });

  it('referencedImages: each part once, in the order the HTML names it', () => {
    const a = part({ filename: 'a.png', contentId: 'a' });
    const b = part({ filename: 'b.png', contentId: 'b' });
    const html =
      '<img src="cid:b"><IMG alt=">" SRC=\'cid:a\'><img src=cid:b><img src="cid:zz">';
    expect(referencedImages(html, [a, b])).to.deep.equal([b, a]);
  });

  describe('imagesToShow: the budget', () => {
    const rows: Array<[string, ParsedAttachment[], string[]]> = [
      ['a small PNG', [part({ filename: 'a' })], ['a']],
      [
        'an SVG is named, not shown',
        [part({ filename: 'a', contentType: 'image/svg+xml' })],
        [],
      ],
      [
        'a PDF is not an image',
        [part({ filename: 'a', contentType: 'application/pdf' })],
        [],
      ],
      ['an empty image', [part({ filename: 'a', size: 0 })], []],
      [
        'one byte over the per-image budget',
        [part({ filename: 'a', size: INLINE_IMAGE_MAX_BYTES + 1 })],
        [],
      ],
      [
        'exactly the per-image budget',
        [part({ filename: 'a', size: INLINE_IMAGE_MAX_BYTES })],
        ['a'],
      ],
      [
        'images past the message budget are named, smaller ones after still shown',
        [
          ...Array.from({ length: 8 }, (_, i) =>
            part({ filename: `big${i}`, size: INLINE_IMAGE_MAX_BYTES }),
          ),
          part({ filename: 'over', size: INLINE_IMAGE_MAX_BYTES }),
          part({ filename: 'tiny', size: 1 }),
        ],
        [...Array.from({ length: 8 }, (_, i) => `big${i}`)],
      ],
    ];
    for (const [title, images, shown] of rows) {
      it(title, () => {
        expect(imagesToShow(images).map(i => i.filename)).to.deep.equal(shown);
      });
    }
    it('the message budget is 8 full-size images', () => {
      expect(INLINE_IMAGES_MAX_BYTES / INLINE_IMAGE_MAX_BYTES).to.equal(8);
    });
  });

  describe('resolveInlineImages', () => {
    const shown = part({ filename: 'a.png', contentId: 'a@x', dataUrl: DOT });
    const named = part({ filename: 'big <1>.jpg', contentId: 'b@x' });
    const located = part({
      filename: 'image1.png',
      contentLocation: 'image1',
      dataUrl: DOT,
    });
    const rows: Array<[string, string, string]> = [
      [
        'a shown image gets its data: URL',
        '<p><img src="cid:a@x" alt="A"></p>',
        `<p><img src="${DOT}" alt="A"></p>`,
      ],
      [
        'single quotes and an upper-case scheme',
        "<img width=1 src='CID:A@X'>",
        `<img width=1 src="${DOT}">`,
      ],
      [
        'an image over the budget is named by its attachment (escaped)',
        '<img src="cid:b@x" alt="B">',
        '[image: big &lt;1&gt;.jpg]',
      ],
      [
        'a cid: that names no part: its alt text',
        '<img alt="Logo &amp; co" src="cid:zz@x">',
        '[image: Logo &amp; co]',
      ],
      ['a cid: that names no part, no alt', '<img src="cid:zz@x">', '[image]'],
      [
        'MHTML: by Content-Location',
        '<img src="image1" width="267">',
        `<img src="${DOT}" width="267">`,
      ],
      [
        'a remote image is left to the sanitizer',
        '<img src="https://e.example/a.png">',
        '<img src="https://e.example/a.png">',
      ],
      ['an image without src', '<img alt="x">', '<img alt="x">'],
    ];
    for (const [title, html, out] of rows) {
      it(title, () => {
        expect(resolveInlineImages(html, [shown, named, located])).to.equal(
          out,
        );
      });
    }

    it('then sanitized: the data: URL survives, no cid: is left', () => {
      const html =
        '<img src="cid:a@x"><img src="cid:b@x"><a href="cid:a@x">a</a>';
      const clean = sanitizeMailHtml(
        resolveInlineImages(html, [shown, named]),
        'block',
      );
      expect(clean).to.equal(
        `<img src="${DOT}" />[image: big &lt;1&gt;.jpg]<a rel="noopener noreferrer">a</a>`,
      );
      expect(clean).to.not.include('cid:');
    });
  });

  describe('attachmentName', () => {
    const rows: Array<[string, Parameters<typeof attachmentName>[0], string]> =
      [
        [
          'the filename wins',
          {
            filename: 'a.pdf',
            contentLocation: 'b.pdf',
            contentType: 'x/y',
            index: 0,
          },
          'a.pdf',
        ],
        [
          'else Content-Location',
          {
            contentLocation: 'Photo25.jpg',
            contentType: 'image/jpeg',
            index: 0,
          },
          'Photo25.jpg',
        ],
        [
          'a URL: its last segment, decoded, no query',
          {
            contentLocation: 'https://e.example/img/my%20logo.gif?v=2#x',
            contentType: 'image/gif',
            index: 0,
          },
          'my logo.gif',
        ],
        [
          'a location without extension gets the type',
          { contentLocation: 'image1', contentType: 'image/png', index: 0 },
          'image1.png',
        ],
        [
          'a location that is only a folder: generated',
          {
            contentLocation: 'https://e.example/',
            contentType: 'image/png',
            index: 2,
          },
          'attachment-3.png',
        ],
        [
          'nothing: generated',
          { filename: null, contentType: 'text/calendar', index: 0 },
          'attachment-1.ics',
        ],
      ];
    for (const [title, input, name] of rows) {
      it(title, () => {
        expect(attachmentName(input)).to.equal(name);
      });
    }
  });
});
