/** The kinds the server has and their compiled schemas, fetched once per tab. */
import { useEffect, useState } from 'preact/hooks';
import type { KindSummaryView } from '@consortium/core';
import { request } from './api.js';
import type { KindDocument } from './schema.js';

let kindsPromise: Promise<KindSummaryView[]> | undefined;
const documents = new Map<string, Promise<KindDocument>>();

/** Every kind (`GET /api/schema`). */
export function loadKinds(): Promise<KindSummaryView[]> {
  kindsPromise ??= request<{ kinds: KindSummaryView[] }>('GET', '/api/schema').then((a) => a.body.kinds);
  kindsPromise.catch(() => (kindsPromise = undefined));
  return kindsPromise;
}

/** A kind's compiled JSON Schema (`GET /api/schema/:kind`). */
export function loadDocument(kind: string): Promise<KindDocument> {
  let promise = documents.get(kind);
  if (promise === undefined) {
    promise = request<KindDocument>('GET', `/api/schema/${encodeURIComponent(kind)}`).then((a) => a.body);
    promise.catch(() => documents.delete(kind));
    documents.set(kind, promise);
  }
  return promise;
}

/** A kind's schema as a hook: the document once loaded, or the error. */
export function useDocument(kind: string): { doc?: KindDocument; error?: unknown } {
  const [state, setState] = useState<{ doc?: KindDocument; error?: unknown }>({});
  useEffect(() => {
    setState({});
    loadDocument(kind).then(
      (doc) => {
        setState({ doc });
      },
      (error: unknown) => {
        setState({ error });
      },
    );
  }, [kind]);
  return state;
}

/** Every kind as a hook. */
export function useKinds(): KindSummaryView[] {
  const [kinds, setKinds] = useState<KindSummaryView[]>([]);
  useEffect(() => {
    loadKinds().then(setKinds, () => undefined);
  }, []);
  return kinds;
}
