// The shell (header, navigation, skip link, live region) and the routes.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { config } from './config';
import { session } from './session';
import { match, navigate, onLinkClick, useLocation, type Location } from './router';
import { ErrorBox, Link } from './ui/kit';
import { loadWho, ReloadWhoContext, WhoContext, type Who } from './who';
import { SignIn, ForgotPassword, TokenPassword, VerifyEmail } from './views/auth';
import { TenantList, NewTenant } from './views/tenants';
import { TenantPage } from './views/tenant';
import { PartnerList, NewPartner, PartnerPage } from './views/partners';
import { PlanList, NewPlan, PlanPage } from './views/plans';
import { FlagList, NewFlag, FlagPage } from './views/flags';
import { ActingBanner, ActingEndedNotice } from './views/acting';
import { AuditLog } from './views/audit';
import { Invitations } from './views/invitations';
import { Platform } from './views/platform';
import { UserList, UserPage } from './views/users';
import { AccountPage } from './views/account';

const PUBLIC = ['/sign-in', '/forgot-password', '/reset-password', '/accept-invitation', '/verify-email'];

export function App({ mailedToken }: { mailedToken: string | null }) {
  const loc = useLocation();
  const [, force] = useState(0);
  const [who, setWho] = useState<Who | null>(null);
  const [whoError, setWhoError] = useState<unknown>(null);
  const signedIn = session.signedIn;
  // Who the API sees: the account, or the member an operator acts as.
  const identity = session.identity;
  const whoFor = useRef('');

  useEffect(() => session.subscribe(() => force((n) => n + 1)), []);
  useEffect(() => {
    document.addEventListener('click', onLinkClick);
    return () => document.removeEventListener('click', onLinkClick);
  }, []);
  useEffect(() => {
    if (!signedIn) {
      setWho(null);
      whoFor.current = '';
      return;
    }
    if (who && whoFor.current === identity) return;
    // Into or out of an impersonation: nothing renders with the previous one's rights meanwhile.
    if (whoFor.current.includes('|acting:') || identity.includes('|acting:')) setWho(null);
    setWhoError(null);
    loadWho().then(
      (w) => {
        if (session.identity !== identity) return;
        whoFor.current = identity;
        setWho(w);
      },
      (e) => {
        if (session.identity === identity) setWhoError(e);
      },
    );
  }, [signedIn, identity]);
  // Loaded for another impersonation (or none): not rendered, so no view calls the API with
  // rights it does not have (until the effect above has loaded the right one).
  const actingPart = (id: string) => id.split('|acting:')[1] ?? '';
  const current = who && actingPart(whoFor.current) === actingPart(identity) ? who : null;
  // An impersonation that ends (stopped, timed out, refused) goes back where it was started.
  const actingId = session.acting?.info.id ?? null;
  const wasActing = useRef<string | null>(null);
  useEffect(() => {
    if (wasActing.current && !actingId && session.actingEnded) navigate(session.actingEnded.from);
    wasActing.current = actingId;
  }, [actingId]);
  // After the account's own memberships change (an invitation answered); errors go to the caller.
  const reloadWho = useCallback(async () => {
    const w = await loadWho();
    if (session.signedIn) setWho(w);
    return w;
  }, []);

  const isPublic = PUBLIC.includes(loc.path);
  useEffect(() => {
    if (!signedIn && !isPublic) {
      const back = loc.path === '/' ? '' : `?next=${encodeURIComponent(loc.path + (loc.query.toString() ? `?${loc.query}` : ''))}`;
      navigate(`/sign-in${back}`, { replace: true });
    } else if (signedIn && loc.path === '/sign-in') {
      const next = loc.query.get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', { replace: true });
    }
  }, [signedIn, isPublic, loc.path]);

  if (loc.path === '/reset-password') return <Bare><TokenPassword kind="reset" token={mailedToken} /></Bare>;
  if (loc.path === '/accept-invitation') return <Bare><TokenPassword kind="invitation" token={mailedToken} /></Bare>;
  if (loc.path === '/verify-email') return <Bare><VerifyEmail token={mailedToken} /></Bare>;
  if (loc.path === '/forgot-password') return <Bare><ForgotPassword /></Bare>;
  if (!signedIn || loc.path === '/sign-in') return <Bare><SignIn /></Bare>;

  return (
    <WhoContext.Provider value={current}>
      <ReloadWhoContext.Provider value={reloadWho}>
        <Shell who={current}>
          {whoError ? (
            <Page title="Console">
              <ErrorBox error={whoError} title="Could not load who you are" />
            </Page>
          ) : !current ? (
            <p class="loading" role="status">Loading…</p>
          ) : (
            <Routes loc={loc} who={current} />
          )}
        </Shell>
      </ReloadWhoContext.Provider>
    </WhoContext.Provider>
  );
}

function Routes({ loc, who }: { loc: Location; who: Who }) {
  const p = loc.path;
  // Acting as a member: that one tenant's pages, nothing else (the token sees nothing else).
  if (who.acting) {
    const home = `/tenants/${who.acting.tenant}`;
    if (p !== home && !p.startsWith(`${home}/`)) return <Redirect to={home} />;
  }
  // An operator who must enrol a second factor can do nothing else: the Account page says why.
  if (session.enrolmentRequired && !who.acting && p !== '/account') return <Redirect to="/account" />;
  if (p === '/account') return <AccountPage />;
  if (p === '/') {
    // Waiting invitations are answered on the tenant list (where an accepted tenant then shows).
    return <Redirect to={who.operator || who.partnerAdmin || who.invitations.length ? '/tenants' : who.manages[0] ? `/tenants/${who.manages[0].slug}` : '/tenants'} />;
  }
  if (p === '/tenants') return <TenantList loc={loc} />;
  if (p === '/tenants/new') return <NewTenant />;
  let m = match('/tenants/:slug/:tab?', p);
  if (m) return <TenantPage slug={m.slug!} tab={m.tab ?? 'overview'} loc={loc} />;
  if (p === '/partners') return <PartnerList />;
  if (p === '/partners/new') return <NewPartner />;
  m = match('/partners/:slug', p);
  if (m) return <PartnerPage slug={m.slug!} />;
  if (p === '/plans') return <PlanList />;
  if (p === '/plans/new') return <NewPlan />;
  m = match('/plans/:id', p);
  if (m) return <PlanPage id={m.id!} />;
  if (p === '/flags') return <FlagList />;
  if (p === '/flags/new') return <NewFlag />;
  m = match('/flags/:key', p);
  if (m) return <FlagPage flagKey={m.key!} />;
  if (p === '/audit') return <AuditLog loc={loc} />;
  if (p === '/platform') return <Platform />;
  if (p === '/users') return <UserList loc={loc} />;
  m = match('/users/:id', p);
  if (m) return <UserPage id={m.id!} />;
  return (
    <Page title="Not found">
      <p>There is no page at this address.</p>
      <p>
        <Link to="/tenants">Go to the tenants</Link>
      </p>
    </Page>
  );
}

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}

/** A view: its title in the tab and one h1, focused when the route changes. */
export function Page({ title, children, actions, lead }: { title: string; children: ComponentChildren; actions?: ComponentChildren; lead?: ComponentChildren }) {
  const h1 = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Console`;
    if (document.activeElement === document.body || document.activeElement?.closest('nav,header')) h1.current?.focus();
  }, [title]);
  return (
    <>
      <div class="page-head">
        <div>
          {lead}
          <h1 ref={h1} tabIndex={-1}>
            {title}
          </h1>
        </div>
        {actions && <div class="page-actions">{actions}</div>}
      </div>
      {children}
    </>
  );
}

function Bare({ children }: { children: ComponentChildren }) {
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="bare-header">
        <span class="brand">Control plane console</span> <EnvBadge />
      </header>
      <main id="main" class="narrow" tabIndex={-1}>
        {children}
      </main>
      <div id="live" class="visually-hidden" aria-live="polite" role="status" />
    </>
  );
}

function EnvBadge() {
  const env = config().env;
  return (
    <span class={`env env-${env === 'aws' ? 'aws' : 'local'}`} title="Environment">
      {env}
    </span>
  );
}

function Shell({ who, children }: { who: Who | null; children: ComponentChildren }) {
  const [menu, setMenu] = useState(false);
  const loc = useLocation();
  useEffect(() => setMenu(false), [loc.path]);
  const items: [string, string][] = [];
  if (!who || who.operator || who.partnerAdmin || who.manages.length) items.push(['/tenants', who && !who.operator && !who.partnerAdmin ? 'My tenants' : 'Tenants']);
  if (who?.operator) items.push(['/partners', 'Partners'], ['/plans', 'Plans'], ['/flags', 'Flags'], ['/users', 'Users'], ['/audit', 'Audit log'], ['/platform', 'Platform']);
  if (who?.acting) items.splice(0, items.length, [`/tenants/${who.acting.tenant}`, `Tenant ${who.acting.tenant}`]);
  // Until a required second factor is set up, only the Account page works.
  if (session.enrolmentRequired) items.length = 0;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <div class="top-row">
          <Link to="/" class="brand">
            Control plane console
          </Link>
          <EnvBadge />
          <button type="button" class="menu-button" aria-expanded={menu} aria-controls="primary-nav" onClick={() => setMenu(!menu)}>
            <span aria-hidden="true">☰</span> Menu
          </button>
        </div>
        <nav id="primary-nav" aria-label="Primary" class={menu ? 'open' : ''}>
          <ul>
            {items.map(([to, label]) => (
              <li key={to}>
                <Link to={to} aria-current={loc.path === to || loc.path.startsWith(`${to}/`) ? 'page' : undefined}>
                  {label}
                </Link>
              </li>
            ))}
          </ul>
          <div class="account">
            <span class="who">
              {session.acting ? (
                // The account pages are the operator's own: not reachable as someone else.
                <span class="account-link">
                  <span class="visually-hidden">Signed in as </span>
                  {session.email}
                </span>
              ) : (
                <Link to="/account" class="account-link" aria-current={loc.path === '/account' ? 'page' : undefined}>
                  <span class="visually-hidden">Your account: </span>
                  {session.email}
                </Link>
              )}
              {who && (
                <span class="role">
                  {who.acting
                    ? 'acting as a member'
                    : who.operator
                      ? 'operator'
                      : who.partnerAdmin
                        ? 'partner admin'
                        : who.manages.some((m) => m.role === 'owner')
                          ? 'tenant owner'
                          : who.manages.length
                            ? 'tenant admin'
                            : 'no console role'}
                </span>
              )}
            </span>
            <button type="button" onClick={() => void session.signOut()}>
              Sign out
            </button>
          </div>
        </nav>
      </header>
      <ActingBanner />
      <main id="main" tabIndex={-1}>
        <ActingEndedNotice />
        {who && !who.acting && !who.operator && !who.partnerAdmin && !who.manages.length && loc.path !== '/account' ? (
          <Page title="Nothing to operate">
            {/* The landing address is the tenant list's, where a tenant joined here then shows. */}
            {loc.path === '/' && <Redirect to="/tenants" />}
            <p>
              You are signed in as <strong>{who.email}</strong>, who is not a platform operator, a partner admin, or an owner or admin of any tenant. The console has nothing
              this account may change.
            </p>
            <p>
              Your name, where you are signed in and two-step sign-in are under <Link to="/account">your account</Link>.
            </p>
            <Invitations />
          </Page>
        ) : (
          children
        )}
      </main>
      <div id="live" class="visually-hidden" aria-live="polite" role="status" />
    </>
  );
}
