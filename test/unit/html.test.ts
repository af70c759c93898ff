// Unit tables for the HTML helpers: XSS specimens removed, mail formatting kept, text <-> HTML.
import { expect } from 'chai';
import {
  htmlToPlainText,
  sanitizeMailHtml,
  textToHtml,
} from '../../src/map/html.js';

/** Words that must never survive sanitizing, whatever the specimen. */
const DANGEROUS = [
  /<script/i,
  /\son[a-z]+\s*=/i,
  /javascript:/i,
  /vbscript:/i,
  /expression\s*\(/i,
  /url\s*\(/i,
  /<style/i,
  /<iframe/i,
  /<object/i,
  /<embed/i,
  /<form/i,
  /<svg/i,
  /<meta/i,
  /<link/i,
  /<base/i,
];

describe('html', () => {
  describe('sanitizeMailHtml removes', () => {
    const rows: Array<[title: string, html: string, out: string]> = [
      ['a script block', '<b>x</b><script>alert(1)</script>', '<b>x</b>'],
      [
        'a script with a src',
        '<script src="http://evil/x.js"></script><p>x</p>',
        '<p>x</p>',
      ],
      [
        'an on* handler',
        '<p onclick="alert(1)" onmouseover=alert(2)>x</p>',
        '<p>x</p>',
      ],
      [
        'onerror on an img',
        '<img src="http://e.com/a.png" onerror="alert(1)">',
        '<img src="http://e.com/a.png" />',
      ],
      [
        'a javascript: href',
        '<a href="javascript:alert(1)">x</a>',
        '<a rel="noopener noreferrer">x</a>',
      ],
      [
        'a JavaScript: href in mixed case and padded',
        '<a href="  JaVaScRiPt:alert(1)">x</a>',
        '<a rel="noopener noreferrer">x</a>',
      ],
      [
        'a vbscript: href',
        '<a href="vbscript:msgbox(1)">x</a>',
        '<a rel="noopener noreferrer">x</a>',
      ],
      [
        'a data: href',
        '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
        '<a rel="noopener noreferrer">x</a>',
      ],
      [
        'a decimal-entity javascript: href',
        '<a href="&#106;&#97;vascript:alert(1)">x</a>',
        '<a rel="noopener noreferrer">x</a>',
      ],
      [
        'a hex-entity javascript: href',
        '<a href="&#x6A;&#x61;vascript&#x3A;alert(1)">x</a>',
        '<a rel="noopener noreferrer">x</a>',
      ],
      [
        'a javascript: href split by an encoded tab',
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        '<a rel="noopener noreferrer">x</a>',
      ],
      [
        'a protocol-relative href',
        '<a href="//evil.example/">x</a>',
        '<a rel="noopener noreferrer">x</a>',
      ],
      ['img src=javascript:', '<img src=javascript:alert(1)>', '<img />'],
      [
        'img src=vbscript:',
        '<img src="vbscript:msgbox(1)" alt="a">',
        '<img alt="a" />',
      ],
      [
        'style with url()',
        '<p style="background:url(javascript:alert(1));color:red">x</p>',
        '<p style="color:red">x</p>',
      ],
      [
        'style with an allowed property holding url()',
        '<p style="border:url(http://evil/x);color:red">x</p>',
        '<p style="color:red">x</p>',
      ],
      [
        'style with expression()',
        '<p style="width:expression(alert(1));font-size:12px">x</p>',
        '<p style="font-size:12px">x</p>',
      ],
      ['style with a CSS escape', '<p style="color:r\\65 d">x</p>', '<p>x</p>'],
      [
        'style with behavior and -moz-binding',
        '<p style="behavior:url(x.htc);-moz-binding:url(x.xml#x)">x</p>',
        '<p>x</p>',
      ],
      [
        'a <style> block and its rules',
        '<style>body{background:url(javascript:alert(1))}</style><p>x</p>',
        '<p>x</p>',
      ],
      ['an iframe', '<iframe src="http://evil/"></iframe><p>x</p>', '<p>x</p>'],
      [
        'object and embed',
        '<object data="x.swf"></object><embed src="x.swf"><p>x</p>',
        '<p>x</p>',
      ],
      [
        'a form and its inputs',
        '<form action="http://evil/"><input name="pw"><button>Go</button></form>',
        'Go',
      ],
      [
        'svg with onload',
        '<svg onload="alert(1)"><circle r="1"/></svg><p>x</p>',
        '<p>x</p>',
      ],
      [
        'meta refresh',
        '<meta http-equiv="refresh" content="0;url=javascript:alert(1)"><p>x</p>',
        '<p>x</p>',
      ],
      [
        'base and link',
        '<base href="http://evil/"><link rel="stylesheet" href="x.css"><p>x</p>',
        '<p>x</p>',
      ],
      [
        'a textarea and its content',
        '<textarea></textarea><img src=x onerror=alert(1)></textarea>',
        '<img src="x" />',
      ],
      [
        'the mXSS noscript trick',
        '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
        '<p></p>',
      ],
      [
        'an HTML comment',
        '<!--<script>alert(1)</script>--><p>x</p>',
        '<p>x</p>',
      ],
    ];
    for (const [title, html, out] of rows) {
      it(title, () => {
        const clean = sanitizeMailHtml(html);
        expect(clean).to.equal(out);
        for (const pattern of DANGEROUS) {
          expect(clean).to.not.match(pattern);
        }
      });
    }
  });

  describe('sanitizeMailHtml keeps', () => {
    const rows: Array<[title: string, html: string, out?: string]> = [
      ['b and i', '<b>bold</b> <i>italic</i>'],
      ['paragraphs and br', '<p>one<br />two</p><p>three</p>'],
      [
        'headings, lists and quotes',
        '<h1>T</h1><ul><li>a</li></ul><blockquote>q</blockquote>',
      ],
      [
        'tables with bgcolor and align',
        '<table bgcolor="#ffffff" align="center" cellpadding="2"><tr><td bgcolor="red" align="right" valign="top" colspan="2">x</td></tr></table>',
      ],
      [
        'an http link, rel added',
        '<a href="http://example.com/a?b=1&amp;c=2">x</a>',
        '<a href="http://example.com/a?b=1&amp;c=2" rel="noopener noreferrer">x</a>',
      ],
      [
        'an https link with a target',
        '<a href="https://example.com/" target="_blank">x</a>',
        '<a href="https://example.com/" target="_blank" rel="noopener noreferrer">x</a>',
      ],
      [
        'a mailto link',
        '<a href="mailto:jane@example.com">mail</a>',
        '<a href="mailto:jane@example.com" rel="noopener noreferrer">mail</a>',
      ],
      [
        'img with an http src',
        '<img src="http://example.com/logo.png" alt="logo" width="10" height="20" />',
      ],
      [
        'img with a cid src: the src dropped (map/cid.ts resolves cid: before)',
        '<img src="cid:part1.abc@example.com" />',
        '<img />',
      ],
      [
        'img with a data: src that is not an image: the src dropped',
        '<img src="data:text/html;base64,PHNjcmlwdD4=" alt="x" />',
        '<img alt="x" />',
      ],
      [
        'img with an SVG data: src: the src dropped',
        '<img src="data:image/svg+xml;base64,PHN2Zz4=" />',
        '<img />',
      ],
      [
        'a link to a cid: URL: the href dropped',
        '<a href="cid:part1@example.com">x</a>',
        '<a rel="noopener noreferrer">x</a>',
      ],
      [
        'img with a data src',
        '<img src="data:image/png;base64,iVBORw0KGgo=" />',
      ],
      [
        'inline color and font-size',
        '<span style="color: #ff0000; font-size: 14px">x</span>',
        '<span style="color:#ff0000;font-size:14px">x</span>',
      ],
      [
        'font with color, face and size',
        '<font color="red" face="Arial" size="3">x</font>',
      ],
      ['centered div', '<div align="center" dir="rtl">x</div>'],
      ['text with entities', '<p>a &lt; b &amp; c</p>'],
      ['non-ASCII text', '<p>Grüße, 件名</p>'],
      [
        'the body of a whole document, without its title',
        '<!DOCTYPE html><html><head><title>News</title><meta charset="utf-8"></head><body><p>x</p></body></html>',
        '<p>x</p>',
      ],
    ];
    for (const [title, html, out] of rows) {
      it(title, () => {
        expect(sanitizeMailHtml(html)).to.equal(out ?? html);
      });
    }
  });

  describe('sanitizeMailHtml with remoteImages block', () => {
    /** An image that a browser would fetch from elsewhere: any source but data:. */
    const REMOTE_IMG = /<img\b[^>]*\bsrc="(?!data:)/i;
    const rows: Array<[title: string, html: string, out: string]> = [
      [
        'an http image: a link to it, named by its alt text',
        '<p><img src="http://example.com/logo.png" alt="Logo" width="10"></p>',
        '<p><a href="http://example.com/logo.png" rel="noopener noreferrer">[image: Logo]</a></p>',
      ],
      [
        'a tracking pixel without alt: a link named [image]',
        '<img src="https://t.example/o.gif?u=42" width="1" height="1" style="display:none">',
        '<a href="https://t.example/o.gif?u=42" rel="noopener noreferrer">[image]</a>',
      ],
      [
        'the alt text escaped and its whitespace collapsed',
        '<img src="https://e.example/a.png" alt=" <b>Fish\n &amp; chips</b> ">',
        '<a href="https://e.example/a.png" rel="noopener noreferrer">[image: &lt;b&gt;Fish &amp; chips&lt;/b&gt;]</a>',
      ],
      [
        'an upper-case scheme',
        '<img src="HTTPS://E.EXAMPLE/A.PNG">',
        '<a href="HTTPS://E.EXAMPLE/A.PNG" rel="noopener noreferrer">[image]</a>',
      ],
      [
        'an entity-encoded scheme',
        '<img src="&#104;ttps://e.example/a.png">',
        '<a href="https://e.example/a.png" rel="noopener noreferrer">[image]</a>',
      ],
      [
        'a source padded with controls and spaces that browsers ignore',
        '<img src=" &#1;https://e.example/a.png">',
        '<a href=" \u0001https://e.example/a.png" rel="noopener noreferrer">[image]</a>',
      ],
      [
        'a protocol-relative source: the link loses it as every such link does',
        '<img src="//e.example/a.png" alt="a">',
        '<a rel="noopener noreferrer">[image: a]</a>',
      ],
      [
        'a relative source (fetched from the helpdesk) is not kept as an image either',
        '<img src="logo.png">',
        '<a href="logo.png" rel="noopener noreferrer">[image]</a>',
      ],
      [
        'a javascript: source: a link without its href',
        '<img src="javascript:alert(1)" alt="x">',
        '<a rel="noopener noreferrer">[image: x]</a>',
      ],
      [
        'a remote image inside a link: both links stay',
        '<a href="https://shop.example/"><img src="https://shop.example/b.png" alt="Sale"></a>',
        '<a href="https://shop.example/" rel="noopener noreferrer"><a href="https://shop.example/b.png" rel="noopener noreferrer">[image: Sale]</a></a>',
      ],
    ];
    for (const [title, html, out] of rows) {
      it(title, () => {
        const clean = sanitizeMailHtml(html, 'block');
        expect(clean).to.equal(out);
        expect(clean).to.not.match(REMOTE_IMG);
        for (const pattern of DANGEROUS) {
          expect(clean).to.not.match(pattern);
        }
      });
    }

    const kept: Array<[title: string, html: string, out?: string]> = [
      ['a data: image', '<img src="data:image/png;base64,iVBORw0KGgo=" />'],
      [
        'a data: image of a type not shown, without its src',
        '<img src="data:image/svg+xml;base64,PHN2Zz4=" alt="s" />',
        '<img alt="s" />',
      ],
      ['an image without a source', '<img alt="nothing" />'],
      [
        'an image with only a srcset: the srcset dropped as before',
        '<img srcset="https://e.example/a.png 1x" alt="a">',
        '<img alt="a" />',
      ],
    ];
    for (const [title, html, out] of kept) {
      it(`keeps ${title}`, () => {
        expect(sanitizeMailHtml(html, 'block')).to.equal(out ?? html);
      });
    }

    it('keep (the default of the function) leaves a remote image an image', () => {
      const html = '<img src="https://e.example/a.png" alt="a" />';
      expect(sanitizeMailHtml(html, 'keep')).to.equal(html);
      expect(sanitizeMailHtml(html)).to.equal(html);
    });
  });

  describe('textToHtml', () => {
    const rows: Array<[title: string, text: string, html: string]> = [
      ['plain words', 'hello', '<div>hello</div>'],
      ['empty', '', '<div></div>'],
      ['markup escaped', '<b>&"x"', '<div>&lt;b&gt;&amp;&quot;x&quot;</div>'],
      [
        'a script stays text',
        '<script>alert(1)</script>',
        '<div>&lt;script&gt;alert(1)&lt;/script&gt;</div>',
      ],
      ['LF line breaks kept', 'a\nb', '<div>a<br>\nb</div>'],
      ['CRLF line breaks kept', 'a\r\nb\r\n', '<div>a<br>\nb<br>\n</div>'],
      ['blank lines kept', 'a\n\nb', '<div>a<br>\n<br>\nb</div>'],
      ['non-ASCII untouched', 'Grüße', '<div>Grüße</div>'],
    ];
    for (const [title, text, html] of rows) {
      it(title, () => {
        expect(textToHtml(text)).to.equal(html);
      });
    }

    it('survives sanitizing unchanged', () => {
      const html = textToHtml('a < b\n"c" & d');
      expect(sanitizeMailHtml(html)).to.equal(
        '<div>a &lt; b<br />\n"c" &amp; d</div>',
      );
    });
  });

  describe('htmlToPlainText', () => {
    const rows: Array<[title: string, html: string, text: string]> = [
      ['tags stripped', '<b>bold</b> and <i>italic</i>', 'bold and italic'],
      [
        'entities decoded',
        '<p>Fish &amp; chips &lt;3 &quot;q&quot; &eacute;</p>',
        'Fish & chips <3 "q" é',
      ],
      ['a literal entity stays literal', '&amp;lt;', '&lt;'],
      ['nbsp becomes a space', 'a&nbsp;b', 'a b'],
      ['br is a line break', 'a<br>b<BR/>c', 'a\nb\nc'],
      [
        'paragraphs are separated by a blank line',
        '<p>one</p><p>two</p>',
        'one\n\ntwo',
      ],
      [
        'divs and list items are lines',
        '<div>a</div><ul><li>b</li><li>c</li></ul>',
        'a\nb\nc',
      ],
      [
        'table cells are spaced, rows are lines',
        '<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>',
        'a b\nc',
      ],
      [
        'source whitespace collapsed',
        '<html>\n <body>\n  <p>Hello\n     world</p>\n  <p>Bye</p>\n </body>\n</html>',
        'Hello world\n\nBye',
      ],
      [
        'no more than one blank line',
        '<p>a</p><p></p><p></p><br><br><p>b</p>',
        'a\n\nb',
      ],
      [
        'script and style contents dropped',
        '<style>p{color:red}</style><script>x()</script>hi',
        'hi',
      ],
      [
        'the document title dropped',
        '<head><title>T</title></head><body>x</body>',
        'x',
      ],
      ['trimmed', '  <p> x </p>  ', 'x'],
      ['empty', '', ''],
    ];
    for (const [title, html, text] of rows) {
      it(title, () => {
        expect(htmlToPlainText(html)).to.equal(text);
      });
    }
  });
});
