import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { isMap, isScalar, parseDocument, type YAMLMap } from 'yaml';
import { CHART_DIR, CI_DIR, renderError } from './chart-render.ts';

const HELM_TIMEOUT_MS = 15 * 60_000;
/** Kubernetes objects that the chart passes through as is: documented as a whole. */
const PASS_THROUGH_PATHS = new Set([
  'podSecurityContext',
  'containerSecurityContext',
  'webhook.resources',
  'aggregator.resources',
  'sidecar.resources',
  'webhook.affinity',
  'aggregator.affinity',
]);

interface ValuesKey {
  path: string;
  comment: string | undefined;
  /** A scalar, a list, an empty map or a pass-through object. */
  leaf: boolean;
}

/** Lists the keys of values.yaml with the comment above each. */
function valuesKeys(): ValuesKey[] {
  const document = parseDocument(readFileSync(path.join(CHART_DIR, 'values.yaml'), 'utf8'));
  const keys: ValuesKey[] = [];
  const walk = (map: YAMLMap, prefix: string): void => {
    map.items.forEach((pair, index) => {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      const keyPath = prefix + key;
      // The comment above a map's first key belongs to the map node.
      const comment =
        (isScalar(pair.key) ? pair.key.commentBefore : undefined) ??
        (index === 0 ? map.commentBefore : undefined) ??
        undefined;
      const descend = isMap(pair.value) && pair.value.items.length > 0;
      const passThrough = PASS_THROUGH_PATHS.has(keyPath);
      keys.push({ path: keyPath, comment, leaf: !descend || passThrough });
      if (descend && !passThrough) walk(pair.value as YAMLMap, `${keyPath}.`);
    });
  };
  walk(document.contents as YAMLMap, '');
  return keys;
}

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  additionalProperties?: unknown;
  $ref?: string;
}

/** Lists the property paths of values.schema.json, down to the pass-through objects. */
function schemaPaths(): string[] {
  const schema = JSON.parse(
    readFileSync(path.join(CHART_DIR, 'values.schema.json'), 'utf8'),
  ) as SchemaNode & { definitions: Record<string, SchemaNode> };
  const paths: string[] = [];
  const walk = (node: SchemaNode, prefix: string): void => {
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const keyPath = prefix + key;
      paths.push(keyPath);
      const resolved = child.$ref?.startsWith('#/definitions/')
        ? schema.definitions[child.$ref.slice('#/definitions/'.length)]!
        : child;
      if (!PASS_THROUGH_PATHS.has(keyPath)) walk(resolved, `${keyPath}.`);
    }
  };
  walk(schema, '');
  return paths;
}

describe('chart values', function () {
  this.timeout(HELM_TIMEOUT_MS);

  describe('contradictions', function () {
    const caBundle = (
      readFileSync(path.join(CI_DIR, 'provided-certificates-values.yaml'), 'utf8').match(
        /caBundle: (\S+)/,
      ) ?? []
    )[1]!;
    const cases: { title: string; set: string[]; message: string }[] = [
      {
        title: 'provided without a Secret',
        set: ['certificates.mode=provided', `certificates.caBundle=${caBundle}`],
        message: 'certificates.mode is provided but certificates.secretName is empty',
      },
      {
        title: 'provided without a caBundle',
        set: ['certificates.mode=provided', 'certificates.secretName=serving'],
        message: 'certificates.mode is provided but certificates.caBundle is empty',
      },
      {
        title: 'provided with a non-PEM caBundle',
        set: [
          'certificates.mode=provided',
          'certificates.secretName=serving',
          'certificates.caBundle=bm90IGEgY2VydGlmaWNhdGU=',
        ],
        message: 'certificates.caBundle is not a base64-encoded PEM certificate',
      },
      {
        title: 'selfSigned with a caBundle',
        set: [`certificates.caBundle=${caBundle}`],
        message: 'certificates.caBundle is set but certificates.mode is selfSigned',
      },
      {
        title: 'certManager with a caBundle',
        set: ['certificates.mode=certManager', `certificates.caBundle=${caBundle}`],
        message: 'certificates.caBundle is set but certificates.mode is certManager',
      },
      {
        title: 'issuerRef outside certManager',
        set: ['certificates.certManager.issuerRef.name=cluster-ca'],
        message: 'certificates.certManager.issuerRef.name is set but certificates.mode is selfSigned',
      },
      {
        title: 'budget that blocks evictions',
        set: ['webhook.replicas=3', 'webhook.podDisruptionBudget.minAvailable=3'],
        message: 'webhook.podDisruptionBudget.minAvailable (3) must be below webhook.replicas (3)',
      },
      {
        title: 'CA shorter-lived than its certificate',
        set: ['certificates.selfSigned.caValidityDays=30'],
        message:
          'certificates.selfSigned.caValidityDays (30) must not be below ' +
          'certificates.selfSigned.certificateValidityDays (365)',
      },
      {
        title: 'no webhook pods and no URL',
        set: ['webhook.replicas=0'],
        message: 'webhook.replicas is 0 but webhook.clientConfig.url is empty',
      },
    ];

    for (const { title, set, message } of cases) {
      it(`rejects ${title}`, async function () {
        expect(await renderError({ set })).to.include(message);
      });
    }
  });

  describe('schema', function () {
    const cases: { title: string; set: string[]; message: RegExp }[] = [
      {
        title: 'unknown top-level key',
        set: ['replicaCount=2'],
        message: /additional properties 'replicaCount' not allowed/,
      },
      {
        title: 'unknown nested key',
        set: ['webhook.failurePolicy=Fail'],
        message: /'\/webhook': additional properties 'failurePolicy' not allowed/,
      },
      {
        title: 'bad sidecar mode',
        set: ['sidecar.mode=sometimes'],
        message: /'\/sidecar\/mode': value must be one of 'auto', 'native', 'container'/,
      },
      {
        title: 'bad certificate mode',
        set: ['certificates.mode=vault'],
        message: /'\/certificates\/mode': value must be one of/,
      },
      {
        title: 'bad injection scope',
        set: ['sidecar.injectionScope=everything'],
        message: /'\/sidecar\/injectionScope': value must be one of 'primary', 'all-nodes'/,
      },
      {
        title: 'timeout above 10 seconds',
        set: ['webhook.timeoutSeconds=11'],
        message: /'\/webhook\/timeoutSeconds': maximum: got 11, want 10/,
      },
      {
        title: 'second aggregator replica',
        set: ['aggregator.replicas=2'],
        message: /'\/aggregator\/replicas': maximum: got 2, want 1/,
      },
      {
        title: 'plain HTTP webhook URL',
        set: ['webhook.clientConfig.url=http://127.0.0.1:9443/mutate'],
        message: /'\/webhook\/clientConfig\/url': '[^']+' does not match pattern/,
      },
      {
        title: 'bad sidecar quantity',
        set: ['sidecar.resources.limits.memory=lots'],
        message: /'\/sidecar\/resources\/limits\/memory'/,
      },
    ];

    for (const { title, set, message } of cases) {
      it(`rejects ${title}`, async function () {
        expect(await renderError({ set })).to.match(message);
      });
    }
  });

  describe('documentation', function () {
    it('comments every key', function () {
      const undocumented = valuesKeys()
        .filter((key) => key.leaf && (key.comment ?? '').trim() === '')
        .map((key) => key.path);
      expect(undocumented).to.deep.equal([]);
    });

    it('states every default', function () {
      const withoutDefault = valuesKeys()
        .filter((key) => key.leaf && !/Default|default/.test(key.comment ?? ''))
        .map((key) => key.path);
      expect(withoutDefault).to.deep.equal([]);
    });

    it('lists every key in the README', function () {
      const readme = readFileSync(path.join(CHART_DIR, 'README.md'), 'utf8');
      const missing = valuesKeys()
        .filter((key) => key.leaf && !readme.includes(`| \`${key.path}\` |`))
        .map((key) => key.path);
      expect(missing).to.deep.equal([]);
    });

    it('matches the schema to the values', function () {
      const valuePaths = valuesKeys().map((key) => key.path);
      const fromSchema = schemaPaths().filter((keyPath) => keyPath !== 'global');
      expect(fromSchema.sort()).to.deep.equal(valuePaths.sort());
    });
  });
});
