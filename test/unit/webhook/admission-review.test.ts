import { expect } from 'chai';
import { allowedResponse, parseAdmissionReview } from '../../../webhook/admission-review.ts';

describe('webhook/admission-review', () => {
  describe('parseAdmissionReview', () => {
    it('describes a non-string apiVersion by type', () => {
      const parsed = parseAdmissionReview(
        '{"apiVersion":{"toString":1},"kind":"AdmissionReview","request":{"uid":"a"}}',
      );
      expect(parsed).to.deep.equal({
        ok: false,
        message:
          'invalid AdmissionReview: expected admission.k8s.io/v1 AdmissionReview, found apiVersion of type object and kind "AdmissionReview"',
      });
    });

    const kinds: [unknown, string][] = [
      [null, 'null'],
      [[1], 'of type array'],
      [7, 'of type number'],
      [undefined, 'of type undefined'],
      ['Pod', '"Pod"'],
    ];
    for (const [kind, described] of kinds) {
      it(`describes kind ${JSON.stringify(kind) ?? 'undefined'}`, () => {
        const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind, request: {} });
        const parsed = parseAdmissionReview(body);
        expect(parsed.ok).to.equal(false);
        const { message } = parsed as { message: string };
        expect(message.endsWith(`and kind ${described}`), message).to.equal(true);
      });
    }

    it('shortens a long apiVersion', () => {
      const parsed = parseAdmissionReview(
        JSON.stringify({ apiVersion: 'v'.repeat(1000), kind: 'AdmissionReview' }),
      );
      expect((parsed as { message: string }).message.length).to.be.below(200);
    });
  });

  describe('warnings', () => {
    it('truncates a long warning with ASCII dots', () => {
      const [warning] = allowedResponse('u', ['x'.repeat(300)]).warnings!;
      expect(warning).to.have.length(256);
      expect(warning!.endsWith('...')).to.equal(true);
    });

    it('keeps a 256-character warning whole', () => {
      const [warning] = allowedResponse('u', ['y'.repeat(256)]).warnings!;
      expect(warning).to.equal('y'.repeat(256));
    });

    it('escapes non-ASCII characters', () => {
      const [warning] = allowedResponse('u', ['value "caf\u00e9\u2026" is invalid']).warnings!;
      expect(warning).to.equal('value "caf\\u00e9\\u2026" is invalid');
    });

    it('replaces control characters with spaces', () => {
      const [warning] = allowedResponse('u', ['a\nb\u0007c']).warnings!;
      expect(warning).to.equal('a b c');
    });
  });
});
