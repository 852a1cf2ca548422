/**
 * A second process for the cross-process tests: maps the descriptor it inherited as fd 3
 * (MAP_SHARED, through the native addon) and reads or writes it.
 *   map-child.ts read OFFSET LENGTH             → prints the bytes as hex
 *   map-child.ts write OFFSET HEX               → writes the bytes
 *   map-child.ts write64be OFFSET VALUE [OFFSET VALUE]… → big-endian u64 stores, in order
 * OFFSET is inside the descriptor; the window mapped is the 64 KiB page(s) holding the access.
 */
import { mmap, munmap } from '../../../src/native/index.ts';

const FD = 3;
const PAGE = 0x10000n;

function withWindow(
  offset: bigint,
  length: number,
  fn: (bytes: Uint8Array, at: number) => void,
): void {
  const base = offset & ~(PAGE - 1n);
  const span = Number(((offset - base + BigInt(length) + PAGE - 1n) / PAGE) * PAGE);
  const m = mmap(FD, base, span, 'rw');
  try {
    fn(new Uint8Array(m.buffer), Number(offset - base));
  } finally {
    munmap(m.buffer);
  }
}

const [op, ...args] = process.argv.slice(2);
if (op === 'read') {
  const length = Number(args[1]);
  withWindow(BigInt(args[0] ?? '0'), length, (b, at) => {
    process.stdout.write(Buffer.from(b.subarray(at, at + length)).toString('hex'));
  });
} else if (op === 'write') {
  const data = Buffer.from(args[1] ?? '', 'hex');
  withWindow(BigInt(args[0] ?? '0'), data.length, (b, at) => b.set(data, at));
} else if (op === 'write64be') {
  for (let i = 0; i + 1 < args.length; i += 2) {
    const offset = BigInt(args[i] ?? '0');
    withWindow(offset, 8, (b, at) =>
      new DataView(b.buffer, b.byteOffset).setBigUint64(at, BigInt(args[i + 1] ?? '0'), false),
    );
  }
} else {
  process.stderr.write(`map-child: unknown op ${op}\n`);
  process.exit(2);
}
