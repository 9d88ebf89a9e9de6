// Renders the chart with the pinned helm binary and parses the output into objects.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { runHelm, runHelmOrThrow } from '../../helm.ts';

export const CHART_DIR = path.resolve(import.meta.dirname, '../../../charts/trainjob-progress');
export const CI_DIR = path.join(CHART_DIR, 'ci');
export const RELEASE_NAME = 'progress';
export const RELEASE_NAMESPACE = 'trainjob-progress-system';
/** Prefix of the release's resource names: release name, then chart name. */
export const FULLNAME = `${RELEASE_NAME}-trainjob-progress`;

/** A rendered object: apiVersion, kind and metadata typed, the rest left to each test. */
export type RenderedObject = KubernetesObject & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [field: string]: unknown;
};

export interface RenderOptions {
  /** Values files, relative to the chart's ci/ folder or absolute. */
  valuesFiles?: string[];
  /** `--set` assignments such as `webhook.replicas=1`. */
  set?: string[];
  /**
   * Values passed as a file, applied after `valuesFiles`. Unlike `--set`, which turns
   * `2.5` into a string, they keep their JSON types.
   */
  values?: Record<string, unknown>;
  namespace?: string;
}

/** Returns the names of the values files in the chart's ci/ folder, sorted. */
export function ciValuesFiles(): string[] {
  return readdirSync(CI_DIR)
    .filter((name) => name.endsWith('-values.yaml'))
    .sort();
}

/** Builds the `helm template` arguments for `options`. */
export function templateArgs(options: RenderOptions = {}): string[] {
  const args = [
    'template',
    RELEASE_NAME,
    CHART_DIR,
    '--namespace',
    options.namespace ?? RELEASE_NAMESPACE,
  ];
  for (const file of options.valuesFiles ?? []) {
    args.push('--values', path.resolve(CI_DIR, file));
  }
  for (const assignment of options.set ?? []) {
    args.push('--set', assignment);
  }
  return args;
}

/** Runs `action` with the `helm template` arguments, writing `options.values` to a file. */
async function withTemplateArgs<T>(
  options: RenderOptions,
  action: (args: string[]) => Promise<T>,
): Promise<T> {
  if (options.values === undefined) return action(templateArgs(options));
  const folder = mkdtempSync(path.join(tmpdir(), 'trainjob-progress-values-'));
  try {
    const file = path.join(folder, 'values.json');
    writeFileSync(file, JSON.stringify(options.values));
    const valuesFiles = [...(options.valuesFiles ?? []), file];
    return await action(templateArgs({ ...options, valuesFiles }));
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

/** Renders the chart and returns its objects, including the helm test pod. */
export async function renderChart(options: RenderOptions = {}): Promise<RenderedObject[]> {
  const output = await withTemplateArgs(options, runHelmOrThrow);
  return parseObjects(output);
}

/** Renders the chart expecting a failure, and returns helm's error output. */
export async function renderError(options: RenderOptions): Promise<string> {
  const result = await withTemplateArgs(options, runHelm);
  if (result.exitCode === 0) {
    throw new Error(`helm template succeeded with ${JSON.stringify(options)}, expected a failure`);
  }
  return result.stderr;
}

/** Parses a multi-document YAML stream into objects, skipping empty documents. */
export function parseObjects(stream: string): RenderedObject[] {
  const objects: RenderedObject[] = [];
  for (const document of parseAllDocuments(stream)) {
    if (document.errors.length > 0) {
      throw new Error(`rendered YAML is invalid: ${document.errors[0]!.message}`);
    }
    const value: unknown = document.toJS();
    if (value !== null && value !== undefined) objects.push(value as RenderedObject);
  }
  return objects;
}

/** Returns the objects of `kind`. */
export function objectsOfKind<T>(objects: RenderedObject[], kind: string): T[] {
  return objects.filter((object) => object.kind === kind) as T[];
}

/** Returns the one object of `kind` whose name ends with `nameSuffix`, or throws. */
export function findObject<T>(objects: RenderedObject[], kind: string, nameSuffix = ''): T {
  const matches = objects.filter(
    (object) => object.kind === kind && object.metadata.name.endsWith(nameSuffix),
  );
  if (matches.length !== 1) {
    const names = matches.map((object) => object.metadata.name).join(', ');
    throw new Error(`expected one ${kind} named *${nameSuffix}, found ${matches.length}: ${names}`);
  }
  return matches[0] as T;
}

/** Returns whether the chart renders an object of `kind`. */
export function hasKind(objects: RenderedObject[], kind: string): boolean {
  return objects.some((object) => object.kind === kind);
}
