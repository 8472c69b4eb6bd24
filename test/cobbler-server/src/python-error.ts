/**
 * Python exceptions as Cobbler's XML-RPC server turns them into faults. `SimpleXMLRPCDispatcher` answers any
 * exception with `Fault(1, "%s:%s" % (type(exc), exc))`, and Cobbler's `CX.__str__` is `repr(self.value)`, so a
 * Cobbler error reads `<class 'cobbler.cexceptions.CX'>:'invalid token: ...'` while a `ValueError` has no quotes.
 */

/** The fault code Python's `SimpleXMLRPCDispatcher` gives every exception. */
export const PYTHON_FAULT_CODE = 1;

/** Python's `repr()` of a string: single quotes unless the text has a single quote and no double quote. */
export function pythonRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  const escaped = text
    .replaceAll('\\', '\\\\')
    .replaceAll('\n', '\\n')
    .replaceAll('\r', '\\r')
    .replaceAll('\t', '\\t')
    .replaceAll(quote, `\\${quote}`);
  return `${quote}${escaped}${quote}`;
}

/** An exception raised inside the simulated Cobbler, with its Python class and its `str()`. */
export class PythonError extends Error {
  /** Builds an exception of Python class `pythonClass` (`ValueError`, `cobbler.cexceptions.CX`, ...). */
  constructor(
    readonly pythonClass: string,
    readonly text: string,
  ) {
    super(`${pythonClass}: ${text}`);
    this.name = 'PythonError';
  }

  /** The fault string the XML-RPC server sends for this exception. */
  get faultString(): string {
    return `<class '${this.pythonClass}'>:${this.text}`;
  }
}

/** `cobbler.cexceptions.CX`, whose `str()` is the repr of its message. */
export function cx(message: string): PythonError {
  return new PythonError('cobbler.cexceptions.CX', pythonRepr(message));
}

/** A built-in `ValueError`. */
export function valueError(message: string): PythonError {
  return new PythonError('ValueError', message);
}

/** A built-in `TypeError`. */
export function typeError(message: string): PythonError {
  return new PythonError('TypeError', message);
}

/** A built-in `KeyError`, whose `str()` is the repr of the missing key. */
export function keyError(key: string): PythonError {
  return new PythonError('KeyError', pythonRepr(key));
}

/** A built-in `AttributeError`. */
export function attributeError(message: string): PythonError {
  return new PythonError('AttributeError', message);
}

/** `ipaddress.AddressValueError`, raised by Cobbler's address validators. */
export function addressValueError(message: string): PythonError {
  return new PythonError('ipaddress.AddressValueError', message);
}

/** `ipaddress.NetmaskValueError`, raised by Cobbler's netmask validator. */
export function netmaskValueError(message: string): PythonError {
  return new PythonError('ipaddress.NetmaskValueError', message);
}
