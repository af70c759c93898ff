// The POST itself: axios's http adapter, handed the request config axios builds for our instance,
// built once instead of for every POST.
// Why, and what the tests compare: docs/architecture.md, "Performance notes".
import type http from 'node:http';
import type https from 'node:https';
import type { Readable } from 'node:stream';
import axios, {
  type AxiosAdapter,
  type AxiosInstance,
  type AxiosResponse,
  type InternalAxiosRequestConfig,
} from 'axios';
import type { Environment } from '../config/environment.js';
import type { ApiConfig } from '../config/schema.js';

/** The axios instance of a client: keep-alive agents, no redirects, the answer as a stream. */
export function createHttp(
  config: Pick<ApiConfig, 'token'>,
  httpAgent: http.Agent,
  httpsAgent: https.Agent,
  environment: Pick<Environment, 'proxyConfigured'> = {},
): AxiosInstance {
  return axios.create({
    adapter: 'http',
    // no axios timeout: the deadline's abort bounds the whole POST (a per-request socket
    // timer as well would cost two timer updates per POST for nothing)
    // follow-redirects would buffer the whole body; a redirect is a configuration error here
    maxRedirects: 0,
    maxBodyLength: Infinity,
    // the answer is a stream: a 2xx body is drained unread, an error body read up to a limit
    responseType: 'stream',
    transitional: { silentJSONParsing: true, forcedJSONParsing: false },
    // the body is always a Buffer or a stream and the answer a stream: axios's default
    // transforms would only look at them and pass them on (about 15 µs of CPU per POST)
    transformRequest: [],
    transformResponse: [],
    validateStatus: () => true,
    httpAgent,
    httpsAgent,
    // without a proxy in the environment, axios need not look for one on every request
    ...(environment.proxyConfigured === false ? { proxy: false as const } : {}),
    headers: {
      Authorization: `Bearer ${config.token ?? ''}`,
      'Content-Type': 'application/json',
      Accept: 'application/json',
      'User-Agent': 'mailbridge',
    },
  });
}

/**
 * An axios adapter. The http adapter reads the headers with AxiosHeaders.from(), so a plain
 * object does, as for a request config.
 */
type Adapter = (
  config: Omit<InternalAxiosRequestConfig, 'headers'> & {
    headers: InternalAxiosRequestConfig['headers'] | Record<string, string>;
  },
) => Promise<AxiosResponse>;

/** The config axios hands its adapter for a POST of this instance, less what each POST sets. */
interface Prepared {
  adapter: Adapter;
  config: Omit<
    InternalAxiosRequestConfig,
    'url' | 'data' | 'signal' | 'headers'
  >;
  /** the instance's headers as axios set them, as a plain object */
  headers: Record<string, string>;
}

/** POSTs through one axios instance, its request config built once (see the top). */
export class HttpPoster {
  private prepared?: Prepared;

  constructor(private readonly instance: AxiosInstance) {}

  /** One POST: resolves with the answer (any status), rejects as `instance.post()` would. */
  post(
    url: string,
    data: Buffer | Readable,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<AxiosResponse> {
    const prepared = this.prepared;
    if (prepared) return send(prepared, url, data, headers, signal);
    return this.prepare().then(ready =>
      send(ready, url, data, headers, signal),
    );
  }

  private async prepare(): Promise<Prepared> {
    let recorded: InternalAxiosRequestConfig | undefined;
    const record: AxiosAdapter = config => {
      recorded = config;
      return Promise.resolve({
        data: null,
        status: 204,
        statusText: '',
        headers: {},
        config,
      });
    };
    // axios's own request path, without I/O: only the adapter differs, and it is left out below
    await this.instance.post('http://prepare.invalid/', null, {
      adapter: record,
    });
    const {
      url: _url,
      data: _data,
      signal: _signal,
      adapter: _recorder,
      headers,
      ...config
    } = recorded!;
    const adapter = axios.getAdapter(
      this.instance.defaults.adapter,
    ) as unknown as Adapter;
    this.prepared ??= {
      adapter,
      config,
      headers: headers.toJSON(true) as Record<string, string>,
    };
    return this.prepared;
  }
}

function send(
  { adapter, config, headers: common }: Prepared,
  url: string,
  data: Buffer | Readable,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<AxiosResponse> {
  // the shared config as the prototype of the POST's own object (copying its 17 keys cost
  // about 5 µs a POST): the adapter reads every key through the prototype chain, as it does
  // for an Object.create(defaults) template, and what it sets lands on the POST's object
  const request = Object.create(config) as Parameters<Adapter>[0];
  request.url = url;
  request.data = data;
  // a new object per POST (the adapter makes its AxiosHeaders of it, and adds to that)
  request.headers = { ...common, ...headers };
  request.signal = signal;
  return adapter(request);
}
