// Which environments make the API client leave proxy detection to axios.
import { expect } from 'chai';
import { proxyConfigured } from '../../src/config/environment.js';

describe('proxyConfigured', () => {
  const cases: Array<[string, NodeJS.ProcessEnv, boolean]> = [
    ['nothing set', {}, false],
    ['only NO_PROXY', { NO_PROXY: 'example.com' }, false],
    ['an empty HTTPS_PROXY', { HTTPS_PROXY: '' }, false],
    ['HTTP_PROXY', { HTTP_PROXY: 'http://proxy:3128' }, true],
    ['https_proxy', { https_proxy: 'http://proxy:3128' }, true],
    ['ALL_PROXY', { ALL_PROXY: 'http://proxy:3128' }, true],
    ['npm_config_proxy (npm start)', { npm_config_proxy: 'http://p:1' }, true],
    ['npm_config_https_proxy', { npm_config_https_proxy: 'http://p:1' }, true],
  ];
  for (const [name, env, expected] of cases) {
    it(`${name} -> ${expected}`, () => {
      expect(proxyConfigured(env)).to.equal(expected);
    });
  }
});
