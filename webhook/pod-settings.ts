// Per-TrainJob settings of the injected sidecar: the chart defaults, overridden by the
// TrainJob's annotations. An invalid annotation never blocks training. Its setting keeps the
// default, and the caller reports the warning (admission warning, log line, metric).

import {
  INJECTION_SCOPE_ANNOTATION,
  METRICS_PATH_ANNOTATION,
  METRICS_POLL_INTERVAL_ANNOTATION,
  METRICS_PORT_ANNOTATION,
  parseMetricsPort,
  parsePollIntervalSeconds,
  SIDECAR_CPU_ANNOTATION,
  SIDECAR_MEMORY_ANNOTATION,
  SIDECAR_MODE_ANNOTATION,
} from '../shared/annotations.ts';
import { DEFAULT_SCRAPE_INTERVAL_SECONDS } from '../shared/sidecar-env.ts';
import { isWholeByteQuantity, MEBIBYTE, parseQuantity } from './quantity.ts';

export type InjectionScope = 'primary' | 'all-nodes';
export type SidecarMode = 'native' | 'container';

export const INJECTION_SCOPES: readonly InjectionScope[] = ['primary', 'all-nodes'];
export const SIDECAR_MODES: readonly SidecarMode[] = ['native', 'container'];

/** CPU and memory of the sidecar as Kubernetes quantities. */
export interface SidecarResources {
  cpuRequest: string;
  cpuLimit: string;
  memoryRequest: string;
  memoryLimit: string;
}

/** Bounds of a sidecar resource value, in cores or bytes. */
export const CPU_CORES_RANGE = { min: 0.001, max: 2 } as const;
export const MEMORY_BYTES_RANGE = { min: 32 * MEBIBYTE, max: 1024 * MEBIBYTE } as const;

/** Chart-wide settings that TrainJob annotations may override. */
export interface InjectionDefaults {
  scope: InjectionScope;
  /** Mode used when the TrainJob names none, already resolved against the cluster version. */
  sidecarMode: SidecarMode;
  /** Whether the API server runs native sidecars (Kubernetes 1.29 and later). */
  nativeSidecarsSupported: boolean;
  metricsPath: string;
  resources: SidecarResources;
}

/** The settings of one TrainJob's sidecar after overrides. */
export interface PodSettings {
  scope: InjectionScope;
  sidecarMode: SidecarMode;
  metricsPort: number;
  metricsPath: string;
  pollIntervalSeconds: number;
  scrapeIntervalSeconds: number;
  resources: SidecarResources;
}

/** A setting that fell back to its default, named by a short metric label. */
export interface SettingWarning {
  setting: string;
  message: string;
}

export interface ResolvedSettings {
  settings: PodSettings;
  warnings: readonly SettingWarning[];
}

const MAX_METRICS_PATH_LENGTH = 256;
// An absolute HTTP path of visible ASCII characters, so it is safe in a URL and an env var.
const METRICS_PATH_SYNTAX = /^\/[\x21-\x7e]*$/;
const MAX_QUOTED_VALUE_LENGTH = 64;

/** Resolves a TrainJob's sidecar settings from its annotations and the chart defaults. */
export function resolvePodSettings(
  annotations: Readonly<Record<string, string>>,
  defaults: InjectionDefaults,
): ResolvedSettings {
  const warnings: SettingWarning[] = [];
  const port = parseMetricsPort(annotations[METRICS_PORT_ANNOTATION]);
  if (port.warning !== undefined) warnings.push({ setting: 'metrics-port', message: port.warning });
  const poll = parsePollIntervalSeconds(annotations[METRICS_POLL_INTERVAL_ANNOTATION]);
  if (poll.warning !== undefined) {
    warnings.push({ setting: 'metrics-poll-interval', message: poll.warning });
  }

  const settings: PodSettings = {
    scope: readScope(annotations, defaults, warnings),
    sidecarMode: readSidecarMode(annotations, defaults, warnings),
    metricsPort: port.value,
    metricsPath: readMetricsPath(annotations, defaults, warnings),
    pollIntervalSeconds: poll.value,
    scrapeIntervalSeconds: Math.min(DEFAULT_SCRAPE_INTERVAL_SECONDS, poll.value),
    resources: readResources(annotations, defaults.resources, warnings),
  };
  return { settings, warnings };
}

function readScope(
  annotations: Readonly<Record<string, string>>,
  defaults: InjectionDefaults,
  warnings: SettingWarning[],
): InjectionScope {
  const value = annotations[INJECTION_SCOPE_ANNOTATION];
  if (value === undefined) return defaults.scope;
  const scope = INJECTION_SCOPES.find((candidate) => candidate === value.trim().toLowerCase());
  if (scope !== undefined) return scope;
  warnings.push({
    setting: 'injection-scope',
    message: invalidValue(
      INJECTION_SCOPE_ANNOTATION,
      value,
      'primary or all-nodes',
      defaults.scope,
    ),
  });
  return defaults.scope;
}

function readSidecarMode(
  annotations: Readonly<Record<string, string>>,
  defaults: InjectionDefaults,
  warnings: SettingWarning[],
): SidecarMode {
  const value = annotations[SIDECAR_MODE_ANNOTATION];
  if (value === undefined) return defaults.sidecarMode;
  const mode = SIDECAR_MODES.find((candidate) => candidate === value.trim().toLowerCase());
  if (mode === undefined) {
    warnings.push({
      setting: 'sidecar-mode',
      message: invalidValue(
        SIDECAR_MODE_ANNOTATION,
        value,
        'native or container',
        defaults.sidecarMode,
      ),
    });
    return defaults.sidecarMode;
  }
  if (mode === 'native' && !defaults.nativeSidecarsSupported) {
    warnings.push({
      setting: 'sidecar-mode',
      message:
        `${SIDECAR_MODE_ANNOTATION}: native sidecars need Kubernetes 1.29 or later; ` +
        'using container',
    });
    return 'container';
  }
  return mode;
}

function readMetricsPath(
  annotations: Readonly<Record<string, string>>,
  defaults: InjectionDefaults,
  warnings: SettingWarning[],
): string {
  const value = annotations[METRICS_PATH_ANNOTATION];
  if (value === undefined) return defaults.metricsPath;
  const path = value.trim();
  if (path.length <= MAX_METRICS_PATH_LENGTH && METRICS_PATH_SYNTAX.test(path)) return path;
  warnings.push({
    setting: 'metrics-path',
    message: invalidValue(
      METRICS_PATH_ANNOTATION,
      value,
      'an absolute path such as /metrics',
      defaults.metricsPath,
    ),
  });
  return defaults.metricsPath;
}

// An override sets both the request and the limit of its resource.
function readResources(
  annotations: Readonly<Record<string, string>>,
  defaults: SidecarResources,
  warnings: SettingWarning[],
): SidecarResources {
  const cpu = annotations[SIDECAR_CPU_ANNOTATION];
  const memory = annotations[SIDECAR_MEMORY_ANNOTATION];
  if (cpu === undefined && memory === undefined) return defaults;
  const resources = { ...defaults };
  const validCpu = cpu === undefined ? undefined : validQuantity(cpu, CPU_CORES_RANGE);
  if (validCpu !== undefined) {
    resources.cpuRequest = resources.cpuLimit = validCpu;
  } else if (cpu !== undefined) {
    const expected = 'a CPU quantity from 1m to 2';
    warnings.push({
      setting: 'sidecar-cpu',
      message: invalidValue(SIDECAR_CPU_ANNOTATION, cpu, expected, defaults.cpuLimit),
    });
  }
  const validMemory = memory === undefined ? undefined : validMemoryQuantity(memory);
  if (validMemory !== undefined) {
    resources.memoryRequest = resources.memoryLimit = validMemory;
  } else if (memory !== undefined) {
    const expected = 'a whole number of bytes from 32Mi to 1Gi';
    warnings.push({
      setting: 'sidecar-memory',
      message: invalidValue(SIDECAR_MEMORY_ANNOTATION, memory, expected, defaults.memoryLimit),
    });
  }
  return resources;
}

/** Returns the trimmed quantity when it parses and lies within `range`, otherwise undefined. */
export function validQuantity(
  text: string,
  range: { readonly min: number; readonly max: number },
): string | undefined {
  const trimmed = text.trim();
  const value = parseQuantity(trimmed);
  return value !== undefined && value >= range.min && value <= range.max ? trimmed : undefined;
}

/**
 * Returns the trimmed memory quantity when it lies within MEMORY_BYTES_RANGE and is a whole
 * number of bytes, otherwise undefined.
 */
export function validMemoryQuantity(text: string): string | undefined {
  const valid = validQuantity(text, MEMORY_BYTES_RANGE);
  return valid !== undefined && isWholeByteQuantity(valid) ? valid : undefined;
}

function invalidValue(annotation: string, value: string, expected: string, used: string): string {
  const shown =
    value.length > MAX_QUOTED_VALUE_LENGTH
      ? `${value.slice(0, MAX_QUOTED_VALUE_LENGTH)}...`
      : value;
  return `${annotation}: invalid value ${JSON.stringify(shown)}, expected ${expected}; using ${used}`;
}
