import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChromeTraceSink } from './chrome-trace-sink.ts';
import type { TraceEventArgs } from './events.ts';
import { formatFtraceLine, formatTraceMessage, formatTraceTimestamp } from './format.ts';
import { RingBufferSink } from './ring-buffer-sink.ts';
import { TextSink } from './text-sink.ts';
import { type TraceRecord, Tracer } from './tracer.ts';

function fixedTracer(): Tracer {
  return new Tracer({ clock: () => 12_345_678_901_234n, task: 'vfio-nvlink2', pid: 4242, cpu: 3 });
}

const mmapArgs: TraceEventArgs['vfio_pci_nvgpu_mmap'] = {
  name: '0000:04:00.0',
  hpa: 0x3e000000000n,
  ua: 0x7fff80000000n,
  size: 0x2000000000n,
  ret: 0,
};

describe('tracepoint formats', () => {
  const record = <E extends keyof TraceEventArgs>(
    event: E,
    args: TraceEventArgs[E],
  ): TraceRecord<E> => ({
    event,
    args,
    timestampNs: 12_345_678_901_234n,
    task: 'vfio-nvlink2',
    pid: 4242,
    cpu: 3,
  });

  it('vfio_pci_nvgpu_mmap_fault: "%s: %lx -> %lx ret=%d"', () => {
    const r = record('vfio_pci_nvgpu_mmap_fault', {
      name: '0000:04:00.0',
      hpa: 0x3e000010000n,
      ua: 0x7fff80010000n,
      ret: 0x100,
    });
    assert.equal(formatTraceMessage(r), '0000:04:00.0: 3e000010000 -> 7fff80010000 ret=256');
  });
  it('vfio_pci_nvgpu_mmap: "%s: %lx -> %lx size=%lx ret=%d"', () => {
    assert.equal(
      formatTraceMessage(record('vfio_pci_nvgpu_mmap', mmapArgs)),
      '0000:04:00.0: 3e000000000 -> 7fff80000000 size=2000000000 ret=0',
    );
  });
  it('vfio_pci_npu2_mmap: same shape, negative results signed', () => {
    const r = record('vfio_pci_npu2_mmap', {
      name: '0007:00:00.0',
      hpa: 0x6030200800000n,
      ua: 0x7fffa0000000n,
      size: 0x10000n,
      ret: -22,
    });
    assert.equal(
      formatTraceMessage(r),
      '0007:00:00.0: 6030200800000 -> 7fffa0000000 size=10000 ret=-22',
    );
  });
  it('our events', () => {
    assert.equal(
      formatTraceMessage(
        record('nvlink2_lpid_map', {
          name: '0004:04:00.0',
          phb: 7n,
          bdf: 0x400,
          lpid: 5,
          msr: 0x4010n,
          ret: 0,
        }),
      ),
      '0004:04:00.0: phb 7 bdf 400 lpid 5 msr 4010 ret=0',
    );
    assert.equal(
      formatTraceMessage(
        record('nvlink2_gpu_ram_fence', {
          name: 'g',
          hpa: 0x3e400000000n,
          offset: 0x400000000n,
          count: 8n,
          ram: 0x400000000n,
        }),
      ),
      'g: hpa 3e400000000 offset 400000000 count 8 is beyond real RAM 400000000',
    );
    assert.equal(
      formatTraceMessage(
        record('nvlink2_region_write', { name: 'g', index: 9, offset: 0x10n, count: 8 }),
      ),
      'g: region 9 offset 10 count 8',
    );
  });
  it('an ftrace line, byte for byte', () => {
    assert.equal(
      formatFtraceLine(record('vfio_pci_nvgpu_mmap', mmapArgs)),
      '    vfio-nvlink2-4242    [003] 12345.678901: vfio_pci_nvgpu_mmap: 0000:04:00.0: 3e000000000 -> 7fff80000000 size=2000000000 ret=0',
    );
    assert.equal(formatTraceTimestamp(1_000n), '    0.000001');
  });
});

describe('Tracer', () => {
  it('is free when nobody listens: no argument is built, read or formatted', () => {
    const tracer = new Tracer();
    let built = 0;
    tracer.emit('vfio_pci_nvgpu_mmap', () => {
      built++;
      return mmapArgs;
    });
    const poisoned = new Proxy(mmapArgs, {
      get() {
        throw new Error('argument read while tracing is off');
      },
    });
    tracer.emit('vfio_pci_nvgpu_mmap', poisoned);
    assert.equal(built, 0);
    assert.equal(tracer.enabled('vfio_pci_nvgpu_mmap'), false);
  });

  it('formats nothing at emit time even when a ring buffer listens', () => {
    const tracer = fixedTracer();
    const ring = new RingBufferSink(8);
    tracer.attach(ring);
    let reads = 0;
    const counting = new Proxy(mmapArgs, {
      get(target, key, receiver) {
        reads++;
        return Reflect.get(target, key, receiver);
      },
    });
    tracer.emit('vfio_pci_nvgpu_mmap', counting);
    assert.equal(reads, 0);
    assert.equal(ring.lines().length, 1);
    assert.ok(reads > 0);
  });

  it('delivers only the events a sink asked for, and detaches', () => {
    const tracer = fixedTracer();
    const ring = new RingBufferSink(8);
    const detach = tracer.attach(ring, ['vfio_pci_npu2_mmap']);
    assert.equal(tracer.enabled('vfio_pci_npu2_mmap'), true);
    assert.equal(tracer.enabled('vfio_pci_nvgpu_mmap'), false);
    tracer.emit('vfio_pci_nvgpu_mmap', mmapArgs);
    tracer.emit('vfio_pci_npu2_mmap', { ...mmapArgs, name: '0007:00:00.0' });
    assert.deepEqual(
      ring.records().map((r) => r.event),
      ['vfio_pci_npu2_mmap'],
    );
    detach();
    detach();
    assert.equal(tracer.enabled('vfio_pci_npu2_mmap'), false);
  });

  it('the ring buffer keeps the newest records and counts overruns', () => {
    const tracer = fixedTracer();
    const ring = new RingBufferSink(2);
    tracer.attach(ring);
    for (let i = 0; i < 5; i++)
      tracer.emit('nvlink2_region_read', { name: 'x', index: 9, offset: BigInt(i), count: 1 });
    assert.deepEqual(
      ring.records('nvlink2_region_read').map((r) => r.args.offset),
      [3n, 4n],
    );
    assert.equal(ring.overruns, 3);
    ring.clear();
    assert.equal(ring.records().length, 0);
  });

  it('text and Chrome JSON sinks', () => {
    const tracer = fixedTracer();
    const lines: string[] = [];
    const chrome = new ChromeTraceSink();
    tracer.attach(new TextSink((l) => lines.push(l)));
    tracer.attach(chrome);
    tracer.emit('vfio_pci_nvgpu_mmap', mmapArgs);
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? '', /: vfio_pci_nvgpu_mmap: 0000:04:00.0: 3e000000000 -> /);
    const json = JSON.parse(chrome.serialize()) as { traceEvents: Record<string, unknown>[] };
    assert.deepEqual(json.traceEvents[0], {
      name: 'vfio_pci_nvgpu_mmap',
      cat: 'vfio_pci',
      ph: 'i',
      s: 't',
      ts: 12_345_678_901.234,
      pid: 4242,
      tid: 3,
      args: {
        name: '0000:04:00.0',
        hpa: '0x3e000000000',
        ua: '0x7fff80000000',
        size: '0x2000000000',
        ret: 0,
        message: '0000:04:00.0: 3e000000000 -> 7fff80000000 size=2000000000 ret=0',
      },
    });
  });
});
