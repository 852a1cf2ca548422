/**
 * The HEADER record's JSON description (stream-format.ts decodeDescription): what encodeHeader
 * writes comes back; a description another writer got wrong is one EINVAL line naming the
 * member (before: one message for every fault, "lacks device, ids, config size or regions", and a
 * region size given as a number, or a fractional index, went through).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VfioError } from '../vfio/index.ts';
import {
  decodeRecord,
  decodeRecordHead,
  encodeHeader,
  RECORD_HEAD,
  RECORD_TAIL,
  RecordType,
  STREAM_MAGIC,
  STREAM_VERSION,
  type StreamDescription,
} from './stream-format.ts';

const DESCRIPTION: StreamDescription = {
  device: '0004:04:00.0',
  vendor: 0x10de,
  deviceId: 0x1db1,
  configSize: 4096,
  regions: [{ index: 0, size: '16777216' }],
  lpid: 1,
};

/** The HEADER payload around `json`, as a writer would make it. */
function header(json: string): Uint8Array {
  const text = new TextEncoder().encode(json);
  const p = new Uint8Array(12 + text.length);
  p.set(STREAM_MAGIC, 0);
  new DataView(p.buffer).setUint32(8, STREAM_VERSION, true);
  p.set(text, 12);
  return p;
}

function refusal(description: unknown): string {
  try {
    decodeRecord(RecordType.HEADER, header(JSON.stringify(description)));
  } catch (err) {
    assert.ok(err instanceof VfioError, String(err));
    assert.equal(err.code, 'EINVAL');
    assert.ok(!err.reason.includes('\n'), 'one line');
    return err.reason;
  }
  assert.fail(`accepted ${JSON.stringify(description)}`);
}

describe('HEADER description', () => {
  it('what encodeHeader writes comes back', () => {
    const record = encodeHeader(0, DESCRIPTION);
    const { length } = decodeRecordHead(record.subarray(0, RECORD_HEAD));
    const payload = record.subarray(RECORD_HEAD, RECORD_HEAD + length);
    assert.equal(record.length, RECORD_HEAD + length + RECORD_TAIL);
    assert.deepEqual(decodeRecord(RecordType.HEADER, payload), {
      type: RecordType.HEADER,
      version: STREAM_VERSION,
      description: DESCRIPTION,
    });
  });

  it('a member missing or of another type is named', () => {
    const at = 'migration stream: HEADER description:';
    const cases: [unknown, string][] = [
      [[], `${at} "the description" must be an object, got an array`],
      [{ ...DESCRIPTION, device: 4 }, `${at} "device" must be a string, got 4`],
      [
        { ...DESCRIPTION, configSize: undefined },
        `${at} "configSize" must be a non-negative integer, got undefined`,
      ],
      [
        { ...DESCRIPTION, regions: [{ index: 0, size: 16777216 }] },
        `${at} "regions[0].size" must be a decimal byte count, got 16777216`,
      ],
      [
        { ...DESCRIPTION, regions: [{ index: 0.5, size: '1' }] },
        `${at} "regions[0].index" must be a non-negative integer, got 0.5`,
      ],
      [{ ...DESCRIPTION, lpid: 'one' }, `${at} "lpid" must be a non-negative integer, got "one"`],
    ];
    for (const [description, message] of cases) assert.equal(refusal(description), message);
    assert.match(
      (() => {
        try {
          decodeRecord(RecordType.HEADER, header('{"device":'));
        } catch (err) {
          return (err as VfioError).reason;
        }
        return 'accepted';
      })(),
      /^migration stream: HEADER description: not JSON \(/,
    );
  });
});
