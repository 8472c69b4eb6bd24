/** The HTTP answers NetBox gives for refused requests, as one error type the routes throw and the app renders. */

/** A JSON (or HTML) error answer with NetBox's status and body. */
export class NetboxHttpError extends Error {
  /** Builds an error answer; `body` is sent as JSON unless it is a string (sent as HTML). */
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`NetBox answer ${status}: ${typeof body === 'string' ? body : JSON.stringify(body)}`);
    this.name = 'NetboxHttpError';
  }
}

/** Field errors as DRF renders them: `{"field": ["message", ...]}`; `__all__` holds model-level errors. */
export type FieldErrors = Record<string, string[]>;

/** A 400 with DRF's field error body. */
export function validationError(errors: FieldErrors): NetboxHttpError {
  return new NetboxHttpError(400, errors);
}

/** The 404 body of DRF's `NotFound` for a detail route (DRF < 3.15, NetBox 3.x; see README). */
export function notFound(): NetboxHttpError {
  return new NetboxHttpError(404, { detail: 'Not found.' });
}

/** The HTML 404 page Django serves for a URL no route matches. */
export function noRoute(path: string): NetboxHttpError {
  return new NetboxHttpError(
    404,
    `<!doctype html>\n<html lang="en">\n<head><title>Not Found</title></head>\n<body><h1>Not Found</h1><p>The requested resource ${path} was not found on this server.</p></body>\n</html>\n`,
  );
}

/** Adds `message` to `errors[field]`. */
export function addError(errors: FieldErrors, field: string, message: string): void {
  (errors[field] ??= []).push(message);
}
