/**
 * The state file codec (state-file.ts), property-based: any JSON body comes back as written;
 * any one byte changed, any cut and any byte added is refused with one line naming the file.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeStateFile, encodeStateFile, STATE_FORMAT, StateDirError } from './state-file.ts';

const PATH = '/state/devices/0002:01:00.0.state';
const body = fc.jsonValue();

function refused(bytes: Uint8Array): string {
  try {
    decodeStateFile(PATH, 'device', bytes);
  } catch (err) {
    assert.ok(err instanceof StateDirError);
    assert.equal(err.code, 'STATE_DIR');
    assert.ok(err.message.startsWith(`${PATH}: `), err.message);
    assert.ok(!err.message.includes('\n'), 'one line');
    return err.message;
  }
  assert.fail('accepted');
}

describe('state files', () => {
  it('any JSON body round-trips', () => {
    fc.assert(
      fc.property(body, (b) => {
        const back = decodeStateFile(PATH, 'device', encodeStateFile('device', b));
        assert.deepEqual(back, JSON.parse(JSON.stringify(b)));
      }),
    );
  });

  it('any one byte changed is refused', () => {
    fc.assert(
      fc.property(body, fc.nat(), fc.integer({ min: 1, max: 255 }), (b, at, x) => {
        const bytes = encodeStateFile('device', b);
        const i = at % bytes.length;
        bytes[i] = (bytes[i] ?? 0) ^ x;
        refused(bytes);
      }),
    );
  });

  it('any cut, and any byte added, is refused', () => {
    fc.assert(
      fc.property(body, fc.nat(), fc.integer({ min: 0, max: 255 }), (b, at, x) => {
        const bytes = encodeStateFile('device', b);
        refused(bytes.subarray(0, at % bytes.length));
        refused(Buffer.concat([bytes, Buffer.from([x])]));
      }),
    );
  });

  it('another format, another kind: the message says which', () => {
    const bytes = encodeStateFile('device', { config: '' });
    const other = Buffer.from(
      bytes.toString('latin1').replace(` ${STATE_FORMAT} `, ` ${STATE_FORMAT + 1} `),
      'latin1',
    );
    assert.equal(
      refused(other),
      `${PATH}: written in state format ${STATE_FORMAT + 1}; this server reads format ${STATE_FORMAT}`,
    );
    assert.equal(
      refused(encodeStateFile('machine', {})),
      `${PATH}: a machine file, expected device`,
    );
  });
});
