/**
 * state.json's one validator (serve-state.ts): what serve writes comes back member for member
 * (the firmware tables whole); any member of a reader's taken away or of another type is one
 * EINVAL line naming the file and the member. serve's real file is read by the CLI tests
 * (inspect --socket-dir, topology --socket-dir, the fuzzer).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VfioError } from '../vfio/index.ts';
import { parseServeState } from './serve-state.ts';

const PATH = '/run/vfio/state.json';
const STATE = {
  pid: 4242,
  partitions: [{ pid: 77, lpid: 1, devices: ['0004:04:00.0'] }],
  lpidsInUse: [1],
  firmware: [
    {
      phbId: '0x7',
      domain: 7,
      path: '/pciex@6030200000000',
      bdfMap: [{ index: 0, bdf: '04:00.0', lpid: 1 }],
      pidMap: [],
      atsd: [{ index: 0, mmio: '0x6030201200000', lpid: 1, msrHv: false }],
    },
  ],
  memory: {
    budget: null,
    touched: 4096,
    refused: 0,
    gpus: [{ address: '0004:04:00.0', gpuRam: 0, bars: 4096 }],
  },
};

function refusal(text: string): string {
  try {
    parseServeState(PATH, text);
  } catch (err) {
    assert.ok(err instanceof VfioError, String(err));
    assert.equal(err.code, 'EINVAL');
    assert.ok(!err.reason.includes('\n'), 'one line');
    return err.reason;
  }
  assert.fail(`accepted ${text}`);
}

/** STATE with the member at `path` set to `value` (undefined: removed). */
function changed(path: readonly (string | number)[], value: unknown): string {
  const copy = structuredClone(STATE) as unknown as Record<string | number, unknown>;
  let at: Record<string | number, unknown> = copy;
  for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (value === undefined) delete at[last];
  else at[last] = value;
  return JSON.stringify(copy);
}

describe('state.json', () => {
  it('what serve writes comes back, the firmware tables whole', () => {
    assert.deepEqual(parseServeState(PATH, JSON.stringify(STATE)), STATE);
  });

  it('a member missing or of another type is named, with the file', () => {
    const cases: [path: (string | number)[], value: unknown, member: string, got: string][] = [
      [['pid'], '4242', 'pid', '"4242"'],
      [['partitions'], undefined, 'partitions', 'undefined'],
      [['partitions', 0, 'lpid'], -1, 'partitions[0].lpid', '-1'],
      [['partitions', 0, 'devices', 0], 7, 'partitions[0].devices[0]', '7'],
      [['lpidsInUse', 0], 1.5, 'lpidsInUse[0]', '1.5'],
      [['firmware', 0, 'path'], null, 'firmware[0].path', 'null'],
      [['firmware', 0, 'atsd', 0, 'lpid'], undefined, 'firmware[0].atsd[0].lpid', 'undefined'],
      [['memory', 'budget'], '1G', 'memory.budget', '"1G"'],
      [['memory', 'gpus', 0], [], 'memory.gpus[0]', 'an array'],
      [['memory', 'gpus', 0, 'bars'], '8', 'memory.gpus[0].bars', '"8"'],
    ];
    for (const [path, value, member, got] of cases) {
      const why = refusal(changed(path, value));
      assert.match(
        why,
        new RegExp(`^${PATH}: "${member.replace(/[[\].]/g, '\\$&')}" must be `),
        why,
      );
      assert.ok(why.endsWith(`, got ${got}`), why);
    }
  });

  it('text that is not JSON, or not an object, or too long a list', () => {
    assert.match(refusal('{"pid":'), /^\/run\/vfio\/state\.json: not JSON \(/);
    assert.equal(refusal('[]'), `${PATH}: "the top level" must be an object, got an array`);
    assert.equal(
      refusal(changed(['lpidsInUse'], new Array(4097).fill(1))),
      `${PATH}: "lpidsInUse" lists 4097 items, at most 4096`,
    );
  });
});
