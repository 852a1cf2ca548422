/**
 * `serve --http PORT`: a read-only live page on 127.0.0.1 (node:http, server-sent events).
 * GET / is the page: the topology picture (src/topology) and, per device, its client partition
 * and LPID; per GPU the touched GPU RAM as a heat strip against the memory budget; the NPUs'
 * ATSD bindings and XTS BDF→LPID tables; the trace tail. GET /state is the snapshot as JSON,
 * GET /events streams it (`data: {json}`) each time it changes. Anything but GET/HEAD is 405;
 * a Host header other than the loopback address is refused (DNS rebinding). The snapshot is
 * taken only while someone listens, every POLL_MS; nothing on the page changes a device.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Machine, PartitionRegistry } from '../machine/index.ts';
import { buildTopology, renderSvg, type TopologyModel, topologyDot } from '../topology/index.ts';
import { RingBufferSink } from '../trace/index.ts';
import type { SessionState } from '../vfio-user/index.ts';
import type { LiveCounters } from './counters.ts';
import { livePageHtml } from './page.ts';
import { liveSnapshot } from './snapshot.ts';

const POLL_MS = 250;
const KEEPALIVE_MS = 15_000;

/** What startLivePage serves: the machine, its client partitions and sessions, the counters, and the port. */
export interface LivePageOptions {
  readonly machine: Machine;
  readonly partitions: PartitionRegistry;
  /** Addresses with a socket. */
  readonly served: ReadonlySet<string>;
  /** The connected session of a device, if any (DMA maps, mmap grants). */
  readonly session?: (address: string) => SessionState | undefined;
  /** Interrupt and ATSD launch counts; also attached to the tracer here. */
  readonly counters?: LiveCounters;
  /** 0 for any free port. */
  readonly port: number;
}

/** A listening live page: its URL and port on 127.0.0.1, and close(). */
export interface LivePage {
  /** http://127.0.0.1:PORT/ */
  readonly url: string;
  readonly port: number;
  close(): void;
}

/**
 * Listens on 127.0.0.1:`port` and serves the page.
 * @throws NodeJS.ErrnoException from listen (EADDRINUSE, EACCES).
 */
export async function startLivePage(options: LivePageOptions): Promise<LivePage> {
  const { machine, partitions, served, session, counters } = options;
  const topology: TopologyModel = buildTopology(machine.host);
  const svg = await renderSvg(topologyDot(topology));
  const html = livePageHtml(topology, svg);
  const trace = new RingBufferSink(1024);
  const detachTrace = machine.ctx.tracer.attach(trace);
  const detachCounters = counters
    ? machine.ctx.tracer.attach(counters, ['nvlink2_atsd_launch'])
    : () => {};
  const listeners = new Set<ServerResponse>();
  const snapshot = () =>
    JSON.stringify(
      liveSnapshot({
        machine,
        topology,
        partitions,
        served,
        trace,
        ...(session ? { session } : {}),
        ...(counters ? { counters } : {}),
      }),
    );
  let last = '';
  let poll: NodeJS.Timeout | undefined;
  const broadcast = () => {
    const now = snapshot();
    if (now === last) return;
    last = now;
    for (const res of listeners) res.write(`data: ${now}\n\n`);
  };
  const keepalive = setInterval(() => {
    for (const res of listeners) res.write(': keepalive\n\n');
  }, KEEPALIVE_MS);
  keepalive.unref();

  let port = options.port;
  const allowedHost = () => new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
      res.end('read-only: GET only\n');
      return;
    }
    if (!allowedHost().has(req.headers.host ?? '')) {
      res.writeHead(421, { 'content-type': 'text/plain' });
      res.end(`this page answers only to 127.0.0.1:${port}\n`);
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/') {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
      });
      res.end(html);
    } else if (path === '/state') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(snapshot());
    } else if (path === '/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      last = snapshot();
      res.write(`data: ${last}\n\n`);
      res.on('error', () => listeners.delete(res)); // a vanished page never takes serve down
      listeners.add(res);
      poll ??= setInterval(broadcast, POLL_MS);
      req.on('close', () => {
        listeners.delete(res);
        if (listeners.size === 0 && poll) {
          clearInterval(poll);
          poll = undefined;
        }
      });
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  };
  const server: Server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  port = typeof address === 'object' && address ? address.port : options.port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close() {
      if (poll) clearInterval(poll);
      clearInterval(keepalive);
      detachTrace();
      detachCounters();
      for (const res of listeners) res.end();
      listeners.clear();
      server.close();
      server.closeAllConnections();
    },
  };
}
