// A failure the user caused or can act on: printed as one line, no stack.
export class UfsError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'UfsError';
  }
}

// Node system errors carry `code` (ENOENT, ...); this narrows unknown catches.
export function errnoCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
