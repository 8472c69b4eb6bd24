/** Hash routes (`#/inventory/host?q=...`): the server serves one index.html, and reloading keeps the page. */
import { useEffect, useState } from 'preact/hooks';

/** Where the console is: the path segments after `#/` and the query. */
export interface Route {
  readonly parts: readonly string[];
  readonly query: URLSearchParams;
}

function parse(): Route {
  const hash = location.hash.replace(/^#\/?/, '');
  const [path = '', query = ''] = hash.split('?', 2);
  return {
    parts: path
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent),
    query: new URLSearchParams(query),
  };
}

/** The current route, updated when the hash changes. */
export function useRoute(): Route {
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const update = (): void => {
      setRoute(parse());
    };
    addEventListener('hashchange', update);
    return () => {
      removeEventListener('hashchange', update);
    };
  }, []);
  return route;
}

/** The href of a route: `href('node', kind, name)`, with an optional query. */
export function href(...parts: (string | URLSearchParams | Record<string, string>)[]): string {
  const segments: string[] = [];
  let query = '';
  for (const part of parts) {
    if (typeof part === 'string') segments.push(encodeURIComponent(part));
    else {
      const params = part instanceof URLSearchParams ? part : new URLSearchParams(part);
      const text = params.toString();
      if (text !== '') query = `?${text}`;
    }
  }
  return `#/${segments.join('/')}${query}`;
}

/** Goes to a route. */
export function navigate(to: string): void {
  location.hash = to.replace(/^#/, '');
}
