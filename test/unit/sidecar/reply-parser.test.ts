import { expect } from 'chai';

import { parseReply } from '../../../sidecar/reply-parser.ts';

describe('parseReply', () => {
  it('reads a welcome', () => {
    expect(parseReply('{"type":"welcome","lastSeq":12}')).to.deep.equal({
      type: 'welcome',
      lastSeq: 12,
    });
  });

  it('reads an ack', () => {
    expect(parseReply('{"type":"ack","seq":3}')).to.deep.equal({ type: 'ack', seq: 3 });
  });

  const invalid = [
    'not json',
    'null',
    '[]',
    '{"type":"welcome"}',
    '{"type":"welcome","lastSeq":-1}',
    '{"type":"ack","seq":1.5}',
    '{"type":"ack","seq":"3"}',
    '{"type":"snapshot","jobs":[]}',
  ];
  for (const text of invalid) {
    it(`rejects ${text}`, () => {
      expect(parseReply(text)).to.equal(undefined);
    });
  }
});
