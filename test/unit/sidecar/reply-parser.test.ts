import { expect } from 'chai';

import { MAX_ACCEPTED_SEQ, parseReply } from '../../../sidecar/reply-parser.ts';

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

describe('reply parser sequence bound', () => {
  it('rejects a welcome that leaves no room to number samples', () => {
    expect(parseReply('{"type":"welcome","lastSeq":9007199254740990}')).to.equal(undefined);
    expect(parseReply(`{"type":"welcome","lastSeq":${MAX_ACCEPTED_SEQ + 1}}`)).to.equal(undefined);
  });

  it('accepts the largest allowed sequence number', () => {
    expect(parseReply(`{"type":"ack","seq":${MAX_ACCEPTED_SEQ}}`)).to.deep.equal({
      type: 'ack',
      seq: MAX_ACCEPTED_SEQ,
    });
  });
});
