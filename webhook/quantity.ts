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

/**
 * Returns whether a quantity is a whole number of bytes written without a sub-unit suffix
 * (`n`, `u`, `m`). `0.5Ki` (512) passes, `1.5` and `1000m` fail. The API server stores a
 * fractional memory quantity in millibytes, such as `33554432500m`, and warns about it.
 * Exact decimal arithmetic, so `33554432.000001` is not rounded to a whole number.
 */
export function isWholeByteQuantity(text: string): boolean {
  const match = QUANTITY_SYNTAX.exec(text);
  if (match === null) return false;
  const suffix = match[2] ?? '';
  if (SUB_UNIT_SUFFIXES.has(suffix)) return false;

  const [integerDigits = '', fractionDigits = ''] = match[1]!.replace(/^[+-]/, '').split('.');
  const digits = BigInt(`${integerDigits}${fractionDigits}` || '0');
  if (digits === 0n) return true;
  const binaryExponent = BigInt(Math.log2(BINARY_SUFFIXES[suffix] ?? 1));
  const decimalExponent = decimalExponentOf(suffix);
  // value = digits * 2^binaryExponent * 10^(decimalExponent - fractionDigits.length)
  const shift = decimalExponent - fractionDigits.length;
  if (shift >= 0) return true;
  // digits * 2^60 is below 10^(digit count + 19), so a larger divisor leaves a fraction.
  if (-shift > String(digits).length + 19) return false;
  return (digits << binaryExponent) % 10n ** BigInt(-shift) === 0n;
}

const SUB_UNIT_SUFFIXES = new Set(['n', 'u', 'm']);
const WHOLE_DECIMAL_EXPONENTS: Record<string, number> = { k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

// Returns the power of ten of a suffix of at least one unit: 0 for none or a binary suffix.
function decimalExponentOf(suffix: string): number {
  if (suffix === '' || suffix in BINARY_SUFFIXES) return 0;
  if (/^[eE][+-]?\d+$/.test(suffix)) return Number(suffix.slice(1));
  return WHOLE_DECIMAL_EXPONENTS[suffix] ?? 0;
}

export const MEBIBYTE = 2 ** 20;
