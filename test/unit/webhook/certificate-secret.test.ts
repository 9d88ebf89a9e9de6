// planRenewal only. Reading and writing the Secret, including the races between replicas, is
// tested against a real kube-apiserver in test/integration/webhook/certificate-secret.test.ts.

import { expect } from 'chai';
import { planRenewal, type CertificateBundle } from '../../../webhook/certificate-secret.ts';
import {
  createCertificateAuthority,
  issueServingCertificate,
  servingNames,
} from '../../../webhook/self-signed-certs.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const NAMES = servingNames('trainjob-progress-webhook', 'tp-system');

async function bundleWith(
  servingValidityMs: number,
  caValidityMs = 365 * DAY_MS,
  names = NAMES,
): Promise<CertificateBundle> {
  const ca = await createCertificateAuthority(caValidityMs);
  const serving = await issueServingCertificate(ca, names, servingValidityMs);
  return { ca, caBundlePem: ca.certificatePem, serving, servingNotAfter: 0 };
}

describe('webhook/certificate-secret', () => {
  describe('planRenewal', () => {
    it('keeps a fresh bundle', async () => {
      expect(planRenewal(await bundleWith(30 * DAY_MS), NAMES, Date.now())).to.equal('keep');
    });

    it('renews everything without a bundle', () => {
      expect(planRenewal(undefined, NAMES, Date.now())).to.equal('renew-ca');
    });

    it('renews a serving certificate with a third left', async () => {
      const bundle = await bundleWith(30 * DAY_MS);
      expect(planRenewal(bundle, NAMES, Date.now() + 21 * DAY_MS)).to.equal('renew-serving');
    });

    it('renews the CA with a third left', async () => {
      const bundle = await bundleWith(30 * DAY_MS, 60 * DAY_MS);
      expect(planRenewal(bundle, NAMES, Date.now() + 41 * DAY_MS)).to.equal('renew-ca');
    });

    it('renews a certificate missing a name', async () => {
      const bundle = await bundleWith(30 * DAY_MS, 365 * DAY_MS, {
        dnsNames: ['localhost'],
        ipAddresses: ['127.0.0.1'],
      });
      expect(planRenewal(bundle, NAMES, Date.now())).to.equal('renew-serving');
    });

    it('renews a certificate of another CA', async () => {
      const bundle = await bundleWith(30 * DAY_MS);
      const other = await bundleWith(30 * DAY_MS);
      expect(planRenewal({ ...bundle, serving: other.serving }, NAMES, Date.now())).to.equal(
        'renew-serving',
      );
    });

    it('renews a key that does not match', async () => {
      const bundle = await bundleWith(30 * DAY_MS);
      const other = await bundleWith(30 * DAY_MS);
      const serving = {
        certificatePem: bundle.serving.certificatePem,
        privateKeyPem: other.serving.privateKeyPem,
      };
      expect(planRenewal({ ...bundle, serving }, NAMES, Date.now())).to.equal('renew-serving');
    });
  });
});
