/**
 * `serve --http PORT`: the live page of the real server in a second process. Over plain HTTP:
 * /state, the /events stream changing when a client writes GPU RAM, read-only (405), loopback
 * only (421 for another Host). In a real browser (Debian's chromium through playwright-core):
 * the page shows the six GPUs of the built-in platform, and when a client connects and writes
 * GPU RAM, the device turns connected and its heat strip changes without a reload. The browser
 * test skips, saying so, only where chromium is missing.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { closeFd, eventfdCreate, eventfdRead } from '../src/native/index.ts';
import { encodeLaunch } from '../src/platform/ats-cache-launch.ts';
import {
  BRIDGE,
  connectWhenFree,
  GPU,
  type ServeProcess,
  startServe,
  waitFor,
} from './support/serve-process.ts';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const GIB = 1n << 30n;
/** The bound on every browser wait (readiness, not speed: nothing asserts a duration). */
const WAIT_MS = 60_000;

interface Snapshot {
  devices: {
    address: string;
    client: { pid: number; lpid: number } | null;
    mapped: number[];
    dmaMaps: number;
    dmaBytes: number;
    interrupts: number;
    interruptsDelivered: number;
  }[];
  gpus: { address: string; gpuRam: number; bucketBytes: number; strip: number[] }[];
  npus: {
    domain: number;
    atsd: { index: number; lpid: number; address: string | null; launches: number }[];
    bdfMap: { bdf: number; lpid: number }[];
  }[];
  trace: string[];
}

function get(url: string, options: { method?: string; host?: string } = {}) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: options.method ?? 'GET',
        headers: options.host ? { host: options.host } : {},
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

let serve: ServeProcess;
let url: string;
before(async () => {
  serve = await startServe(['--http', '0']);
  const m = await waitFor(
    'the live page line',
    () => /live page on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(serve.stderr()) ?? undefined,
  );
  url = m[1]!;
});
after(async () => {
  await serve.stop();
});

describe('serve --http over HTTP', () => {
  it('/state lists every function; GETs only; loopback Host only', async () => {
    const state = await get(`${url}state`);
    assert.equal(state.status, 200);
    const s = JSON.parse(state.body) as Snapshot;
    assert.equal(s.devices.length, 24);
    assert.equal(s.gpus.length, 6);
    assert.equal((await get(url, { method: 'POST' })).status, 405);
    assert.equal((await get(url, { host: 'attacker.example:80' })).status, 421);
    assert.equal((await get(`${url}nothing`)).status, 404);
  });

  it('/events sends a new snapshot when a client writes GPU RAM, maps DMA, takes an mmap, launches ATSD', async () => {
    const u = new URL(`${url}events`);
    const snapshots: Snapshot[] = [];
    const req = request({ host: u.hostname, port: u.port, path: u.pathname });
    const done = new Promise<void>((resolve, reject) => {
      req.on('response', (res) => {
        let buf = '';
        res.on('data', (d: Buffer) => {
          buf += d.toString();
          for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
            const event = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (event.startsWith('data: ')) snapshots.push(JSON.parse(event.slice(6)) as Snapshot);
          }
        });
        res.on('close', resolve);
      });
      req.on('error', reject);
    });
    req.end();
    await waitFor('the first snapshot', () => snapshots.length > 0);
    const client = await connectWhenFree(serve, GPU);
    try {
      await client.regionWrite(9, 2n * GIB, new Uint8Array(4096).fill(7));
      const seen = await waitFor('a snapshot with the write', () =>
        snapshots.find((s) => (s.gpus.find((g) => g.address === GPU)?.gpuRam ?? 0) > 0),
      );
      const g = seen.gpus.find((x) => x.address === GPU)!;
      // 16 GiB of real RAM in 64 buckets of 256 MiB: offset 2 GiB is bucket 8.
      assert.equal(g.bucketBytes, 256 * 1024 * 1024);
      assert.ok(g.strip[8]! > 0);
      assert.equal(
        g.strip.reduce((a, b) => a + b, 0),
        g.gpuRam,
      );
      assert.equal(seen.devices.find((d) => d.address === GPU)?.client?.pid, process.pid);

      await client.dmaMap({ address: 0x1000_0000n, size: 4n << 20n });
      const info = await client.regionInfo(9); // GPU RAM: the mmap op runs (vfio_pci_nvgpu_mmap)
      if (info.fd !== null) closeFd(info.fd);
      const dev = await waitFor('a snapshot with the DMA map and the mapping', () =>
        snapshots
          .at(-1)
          ?.devices.find((d) => d.address === GPU && d.dmaMaps === 1 && d.mapped.includes(9)),
      );
      assert.equal(dev.dmaBytes, 4 << 20);
      assert.deepEqual(dev.mapped, [9]);

      // Two MSI-X vectors rung through the BAR0 doorbell; only vector 0 has an eventfd.
      const efd = eventfdCreate(0, { nonBlocking: true });
      try {
        await client.setIrqs({ index: 2, start: 0, count: 1, eventfds: [efd] });
        const doorbell = (await client.getRegionInfo(0)).info.size - 0x1000n;
        for (const vector of [0, 1]) {
          const b = new Uint8Array(4);
          new DataView(b.buffer).setUint32(0, vector, true);
          await client.regionWrite(0, doorbell, b);
        }
        assert.equal(eventfdRead(efd), 1n);
        const rung = await waitFor('a snapshot with the interrupts', () =>
          snapshots.at(-1)?.devices.find((d) => d.address === GPU && d.interrupts === 2),
        );
        assert.equal(rung.interruptsDelivered, 1);
      } finally {
        closeFd(efd);
      }

      // An ATSD launch through the link-0 bridge's register (region 9: AVA at 8, LAUNCH at 0).
      const bridge = await connectWhenFree(serve, BRIDGE);
      try {
        const u64 = (v: bigint) => {
          const b = new Uint8Array(8);
          new DataView(b.buffer).setBigUint64(0, v, false);
          return b;
        };
        await bridge.regionWrite(9, 8n, u64(0n));
        await bridge.regionWrite(9, 0n, u64(encodeLaunch({ prs: true, is: 1, pid: 5 })));
        const npu = await waitFor('a snapshot with the launch', () =>
          snapshots.at(-1)?.npus.find((n) => n.domain === 0 && n.atsd[0]?.launches === 1),
        );
        const lpid = seen.devices.find((d) => d.address === GPU)?.client?.lpid;
        // The GPU's MAP_LPAR bound ATSD register 0 and its BDF (01:00.0 = 0x100) to its LPID.
        assert.deepEqual(npu.atsd[0], {
          index: 0,
          lpid,
          msrHv: false,
          address: '0x6030200800000',
          launches: 1,
        });
        assert.ok(npu.bdfMap.some((e) => e.bdf === 0x100 && e.lpid === lpid));
        const last = snapshots.at(-1)!;
        assert.ok(
          last.trace.some((l) =>
            l.includes('nvlink2_atsd_launch: 0000:00:00.0: atsd 6030200800000'),
          ),
        );
      } finally {
        bridge.close();
      }
    } finally {
      client.close();
      req.destroy();
      await done.catch(() => {});
    }
  });
});

describe('the live page in a real browser', {
  skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)`,
}, () => {
  it('shows the six GPUs; a client connecting and writing GPU RAM shows up without a reload', async () => {
    const { chromium } = await import('playwright-core');
    // A fresh profile each run (launchPersistentContext passes it as --user-data-dir).
    const profile = mkdtempSync(join(tmpdir(), 'vfio-nvlink2-chromium-'));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: WAIT_MS,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-dev-shm-usage',
      ],
    });
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      page.setDefaultTimeout(WAIT_MS); // every wait below is bounded by this
      let loads = 0;
      page.on('load', () => {
        loads++;
      });
      await page.goto(url);
      await page.waitForFunction('Number(document.body.dataset.updates || 0) > 0');
      const gpuRows = await page.$$eval('tr[id^="row-"]', (rows) =>
        rows.filter((r) => r.children[1]?.textContent?.startsWith('GPU')).map((r) => r.id),
      );
      assert.deepEqual(gpuRows, [
        'row-0002:01:00.0',
        'row-0003:02:00.0',
        'row-0004:03:00.0',
        'row-0005:01:00.0',
        'row-0006:02:00.0',
        'row-0007:03:00.0',
      ]);
      const row = `[id="row-${GPU}"]`;
      const cell = `[id="strip-${GPU}"] i:nth-child(13)`; // bucket 12: 3 GiB
      assert.equal(await page.getAttribute(row, 'data-client'), 'none');
      assert.equal(await page.getAttribute(cell, 'data-bytes'), '0');
      const client = await connectWhenFree(serve, GPU);
      try {
        await client.regionWrite(9, 3n * GIB, new Uint8Array(4096).fill(9));
        await page.waitForFunction(
          `document.querySelector(${JSON.stringify(row)}).dataset.client !== 'none' &&
           document.querySelector(${JSON.stringify(cell)}).dataset.bytes !== '0'`,
        );
        const owner = (await page.getAttribute(row, 'data-client')) ?? '';
        assert.match(owner, new RegExp(`^${process.pid}:\\d+$`));
        assert.match((await page.textContent(`${row} .client`)) ?? '', /connected · pid/);
        assert.equal(loads, 1, 'no reload');
      } finally {
        client.close();
      }
    } finally {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    }
  });
});
