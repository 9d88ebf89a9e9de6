import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { createLogger } from '../../../shared/logger.ts';
import {
  bundleFromSecret,
  ensureCertificateSecret,
  planRenewal,
  splitPem,
  type CertificateBundle,
  type CertificateSecretOptions,
} from '../../../webhook/certificate-secret.ts';
import {
  createCertificateAuthority,
  issueServingCertificate,
  servingNames,
} from '../../../webhook/self-signed-certs.ts';
import { FakeKube } from './fake-kube.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const SECRET_PATH = '/api/v1/namespaces/tp-system/secrets/webhook-tls';
const NAMES = servingNames('trainjob-progress-webhook', 'tp-system');
const OPTIONS: CertificateSecretOptions = {
  namespace: 'tp-system',
  secretName: 'webhook-tls',
  names: NAMES,
  servingValidityMs: 30 * DAY_MS,
  caValidityMs: 365 * DAY_MS,
};
const logger = createLogger('test', 'silent');

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

  describe('ensureCertificateSecret', () => {
    it('creates the Secret when missing', async () => {
      const kube = new FakeKube();
      const { bundle, written } = await ensureCertificateSecret(kube, OPTIONS, logger);
      expect(written).to.equal(true);
      const secret = kube.objects.get(SECRET_PATH)!;
      expect(secret.type).to.equal('kubernetes.io/tls');
      expect(Object.keys(secret.data as object).sort()).to.deep.equal([
        'ca.crt',
        'ca.key',
        'tls.crt',
        'tls.key',
      ]);
      expect(bundleFromSecret(secret)!.serving.certificatePem).to.equal(
        bundle.serving.certificatePem,
      );
    });

    it('issues a serving certificate for the Service and loopback', async () => {
      const { bundle } = await ensureCertificateSecret(new FakeKube(), OPTIONS, logger);
      const certificate = new X509Certificate(bundle.serving.certificatePem);
      expect(certificate.subjectAltName).to.equal(
        'DNS:trainjob-progress-webhook, DNS:trainjob-progress-webhook.tp-system, DNS:trainjob-progress-webhook.tp-system.svc, DNS:trainjob-progress-webhook.tp-system.svc.cluster.local, DNS:localhost, IP Address:127.0.0.1',
      );
      expect(certificate.checkIssued(new X509Certificate(bundle.ca.certificatePem))).to.equal(true);
      expect(Date.parse(certificate.validFrom)).to.be.below(Date.now() - 30 * 60 * 1000);
    });

    it('adopts a usable Secret without writing', async () => {
      const kube = new FakeKube();
      const first = await ensureCertificateSecret(kube, OPTIONS, logger);
      const second = await ensureCertificateSecret(kube, OPTIONS, logger);
      expect(second.written).to.equal(false);
      expect(second.bundle.serving.certificatePem).to.equal(first.bundle.serving.certificatePem);
    });

    it('adopts the Secret of a replica that created it first', async () => {
      const kube = new FakeKube();
      const other = new FakeKube();
      const { bundle: winner } = await ensureCertificateSecret(other, OPTIONS, logger);
      kube.beforeRequest = (method) => {
        if (method === 'POST') kube.objects.set(SECRET_PATH, other.objects.get(SECRET_PATH)!);
      };
      const { bundle, written } = await ensureCertificateSecret(kube, OPTIONS, logger);
      expect(written).to.equal(false);
      expect(bundle.caBundlePem).to.equal(winner.caBundlePem);
    });

    it('adopts a renewal that won an update conflict', async () => {
      const kube = new FakeKube();
      await ensureCertificateSecret(
        kube,
        { ...OPTIONS, names: { dnsNames: ['old'], ipAddresses: [] } },
        logger,
      );
      let raced = false;
      kube.beforeRequest = async (method) => {
        if (method !== 'PUT' || raced) return;
        raced = true;
        const rival = new FakeKube();
        rival.objects.set(SECRET_PATH, structuredClone(kube.objects.get(SECRET_PATH)!));
        await ensureCertificateSecret(rival, OPTIONS, logger);
        kube.handle('PUT', SECRET_PATH, rival.objects.get(SECRET_PATH));
      };
      const { bundle, written } = await ensureCertificateSecret(kube, OPTIONS, logger);
      expect(written).to.equal(false);
      expect(bundle.serving.certificatePem).to.equal(
        bundleFromSecret(kube.objects.get(SECRET_PATH)!)!.serving.certificatePem,
      );
    });

    it('keeps the CA when renewing the serving certificate', async () => {
      const kube = new FakeKube();
      const first = await ensureCertificateSecret(
        kube,
        { ...OPTIONS, names: { dnsNames: ['old'], ipAddresses: [] } },
        logger,
      );
      const second = await ensureCertificateSecret(kube, OPTIONS, logger);
      expect(second.written).to.equal(true);
      expect(second.bundle.caBundlePem).to.equal(first.bundle.caBundlePem);
      expect(second.bundle.serving.certificatePem).to.not.equal(
        first.bundle.serving.certificatePem,
      );
    });

    it('publishes the old CA next to a renewed one', async () => {
      const kube = new FakeKube();
      await ensureCertificateSecret(kube, OPTIONS, logger);
      // A CA issued 20 hours ago for a day has 4 of its 25 hours left: due, but still valid.
      const old = await createCertificateAuthority(DAY_MS, Date.now() - 20 * 60 * 60 * 1000);
      const data = kube.objects.get(SECRET_PATH)!.data as Record<string, string>;
      data['ca.crt'] = Buffer.from(old.certificatePem).toString('base64');
      data['ca.key'] = Buffer.from(old.privateKeyPem).toString('base64');

      const rotated = await ensureCertificateSecret(kube, OPTIONS, logger);
      expect(rotated.written).to.equal(true);
      const cas = splitPem(rotated.bundle.caBundlePem);
      expect(cas).to.have.length(2);
      expect(cas[0]).to.equal(rotated.bundle.ca.certificatePem.trim());
      expect(cas[1]).to.equal(old.certificatePem.trim());
    });
  });
});
