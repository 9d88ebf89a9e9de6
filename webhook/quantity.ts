// Kubernetes resource quantities (`100m`, `64Mi`, `1.5`, `2e3`), parsed to validate
// per-TrainJob overrides before they reach the API server, which would reject the whole pod.

const BINARY_SUFFIXES: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const DECIMAL_SUFFIXES: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

// The grammar of k8s.io/apimachinery/pkg/api/resource: a signed decimal number followed by a
// binary suffix, a decimal suffix or a decimal exponent.
const QUANTITY_SYNTAX =
  /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;

/**
 * Parses a quantity to its value in base units (cores, bytes). Returns undefined when the text
 * is not a quantity in Kubernetes syntax.
 */
export function parseQuantity(text: string): number | undefined {
  const match = QUANTITY_SYNTAX.exec(text);
  if (match === null) return undefined;
  const number = Number(match[1]);
  const suffix = match[2] ?? '';
  const multiplier =
    BINARY_SUFFIXES[suffix] ??
    DECIMAL_SUFFIXES[suffix] ??
    (/^[eE]/.test(suffix) ? 10 ** Number(suffix.slice(1)) : undefined);
  if (multiplier === undefined) return undefined;
  const value = number * multiplier;
  return Number.isFinite(value) ? value : undefined;
}

export const MEBIBYTE = 2 ** 20;
