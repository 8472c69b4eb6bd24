/**
 * The Consortium web console. Preact (a 4 KB React-compatible renderer, maintained since 2015) draws it; every page
 * reads and writes through the public API with the operator's bearer token, so the console can do nothing that
 * `consort` could not.
 */
import './styles.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { Session } from './api.js';
import { currentSession, messageOf, onUnauthenticated, signIn, signOut } from './api.js';
import { ErrorBanner, PageTitle } from './components.js';
import { useKinds } from './kinds.js';
import { AuditPage, TokensPage } from './pages/admin.js';
import { CreatePage } from './pages/create.js';
import { InventoryPage } from './pages/inventory.js';
import { JobPage, JobsPage } from './pages/jobs.js';
import { NodePage } from './pages/node.js';
import { href, navigate, useRoute } from './router.js';
import type { Route } from './router.js';

function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string>();
  return (
    <main id="main" class="signin">
      <PageTitle>Sign in to Consortium</PageTitle>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          signIn(token.trim()).then(onSignedIn, (err: unknown) => {
            setError(messageOf(err));
          });
        }}
      >
        <label for="token">API token</label>
        <input
          id="token"
          type="password"
          autoComplete="off"
          value={token}
          required
          aria-invalid={error === undefined ? undefined : 'true'}
          aria-describedby="token-help token-error"
          onInput={(e) => {
            setToken(e.currentTarget.value);
          }}
        />
        <small id="token-help" class="help">
          A token from <code>consortium dev</code> (its <code>token:</code> line) or{' '}
          <code>consortium token create</code>. It is kept in this tab only and forgotten when the tab closes.
        </small>
        <div id="token-error" class="field-error" role="alert">
          {error ?? ''}
        </div>
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

function Page({ route, session }: { route: Route; session: Session }) {
  const [section = 'inventory', a, b] = route.parts;
  const canEdit = session.caller.role !== 'reader';
  if (section === 'inventory')
    return <InventoryPage key={a} kind={a ?? 'host'} route={route} canEdit={canEdit} />;
  if (section === 'node' && a !== undefined && b !== undefined)
    return <NodePage key={`${a}/${b}`} kind={a} name={b} canEdit={canEdit} />;
  if (section === 'create' && a !== undefined && canEdit) return <CreatePage key={a} kind={a} />;
  if (section === 'jobs' && a !== undefined) return <JobPage key={a} id={a} canEdit={canEdit} />;
  if (section === 'jobs') return <JobsPage route={route} />;
  if (section === 'tokens') return <TokensPage />;
  if (section === 'audit') return <AuditPage route={route} />;
  return <ErrorBanner error={new Error(`no page ${location.hash}`)} />;
}

function App() {
  const [session, setSession] = useState(currentSession);
  const route = useRoute();
  useEffect(
    () =>
      onUnauthenticated(() => {
        signOut();
        setSession(undefined);
      }),
    [],
  );
  if (session === undefined) return <SignIn onSignedIn={setSession} />;
  return (
    <Shell
      session={session}
      route={route}
      onSignOut={() => {
        setSession(undefined);
      }}
    />
  );
}

function Shell({ session, route, onSignOut }: { session: Session; route: Route; onSignOut: () => void }) {
  const kinds = useKinds();
  const [section = 'inventory', current = 'host'] = route.parts;
  const link = (to: string, label: string, active: boolean) => (
    <a href={to} aria-current={active ? 'page' : undefined}>
      {label}
    </a>
  );
  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById('main')?.focus();
        }}
      >
        Skip to the page
      </a>
      <header>
        <a class="brand" href={href('inventory', 'host')}>
          Consortium
        </a>
        <nav aria-label="Sections">
          {kinds.map((k) =>
            link(href('inventory', k.name), k.name, section === 'inventory' && current === k.name),
          )}
          {link(href('jobs'), 'jobs', section === 'jobs')}
          {session.caller.role === 'admin' ? link(href('tokens'), 'tokens', section === 'tokens') : null}
          {link(href('audit'), 'audit', section === 'audit')}
        </nav>
        <span class="who">
          {session.caller.id} ({session.caller.role}){' '}
          <button
            type="button"
            class="secondary"
            onClick={() => {
              signOut();
              onSignOut();
              navigate('#/');
            }}
          >
            Sign out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        <Page route={route} session={session} />
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root !== null) render(<App />, root);
