// Passkeys (WebAuthn) in the browser: the two ceremonies on the JSON forms the API sends and
// takes (`PublicKeyCredential.parse...OptionsFromJSON`, `credential.toJSON()`), with the same
// conversions done by hand for browsers that lack those methods, and the browser's refusals
// put in words. The relying party is the console's domain: an IP address cannot be one.

/** Why passkeys cannot be used from this page, in a sentence; null when they can. */
export function passkeysUnusableHere(): string | null {
  if (typeof window === 'undefined' || typeof PublicKeyCredential === 'undefined' || !navigator.credentials) {
    return 'This browser does not support passkeys.';
  }
  if (isIpAddress(location.hostname)) {
    return `Passkeys need the console's domain name: browsers refuse them at an IP address such as ${location.hostname}.`;
  }
  if (!window.isSecureContext) return 'Passkeys need the console to be opened over HTTPS.';
  return null;
}

export function isIpAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':') || host.startsWith('[');
}

/** The relying party's domain named by the options, when this page is not on it (the browser
 * would refuse with a bare SecurityError): said before the browser is asked. */
export function wrongDomain(rpId: string | undefined): string | null {
  if (!rpId) return null;
  const host = location.hostname.toLowerCase();
  const rp = rpId.toLowerCase();
  return host === rp || host.endsWith(`.${rp}`) ? null : rp;
}

/** Registers a new passkey; the answer is the `RegistrationResponseJSON` for the API. */
export async function createPasskey(options: PublicKeyCredentialCreationOptionsJSON): Promise<unknown> {
  const publicKey =
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function' ? PublicKeyCredential.parseCreationOptionsFromJSON(options) : creationFromJson(options);
  const cred = (await navigator.credentials.create({ publicKey })) as PublicKeyCredential | null;
  if (!cred) throw new DOMException('No passkey was created.', 'NotAllowedError');
  return typeof cred.toJSON === 'function' ? cred.toJSON() : credentialToJson(cred);
}

/** Signs the challenge with one of the account's passkeys: the `AuthenticationResponseJSON`. */
export async function assertPasskey(options: PublicKeyCredentialRequestOptionsJSON): Promise<unknown> {
  const publicKey =
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function' ? PublicKeyCredential.parseRequestOptionsFromJSON(options) : requestFromJson(options);
  const cred = (await navigator.credentials.get({ publicKey })) as PublicKeyCredential | null;
  if (!cred) throw new DOMException('No passkey was used.', 'NotAllowedError');
  return typeof cred.toJSON === 'function' ? cred.toJSON() : credentialToJson(cred);
}

/** A browser's refusal of a ceremony (a DOMException), in words; null for anything else. */
export function ceremonyRefusal(e: unknown, what: 'create' | 'get'): { title: string; text: string } | null {
  if (!(e instanceof DOMException)) return null;
  switch (e.name) {
    case 'NotAllowedError':
    case 'AbortError':
      return {
        title: what === 'create' ? 'No passkey was added' : 'No passkey was used',
        text: 'The browser’s passkey prompt was cancelled or timed out. Try again when your device or security key is ready.',
      };
    case 'InvalidStateError':
      return what === 'create'
        ? { title: 'This device already has a passkey for your account', text: 'Use another device or security key, or rename the passkey you have.' }
        : { title: 'The passkey could not be used', text: e.message };
    case 'SecurityError':
      return { title: 'The browser refused the passkey', text: `Passkeys work only on the console's own domain, over HTTPS (this page is ${location.origin}).` };
    case 'NotSupportedError':
      return { title: 'No suitable passkey', text: 'This browser or device cannot make a passkey of a kind the console accepts. Try another device or a security key.' };
    default:
      return null;
  }
}

// ---------------------------------------------------------------- by hand (older browsers)

function fromB64url(s: string): ArrayBuffer {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

function toB64url(b: ArrayBuffer | ArrayBufferView | null | undefined): string | undefined {
  if (!b) return undefined;
  const bytes = b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  let bin = '';
  for (const x of bytes) bin += String.fromCharCode(x);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const descriptors = (list: PublicKeyCredentialDescriptorJSON[] | undefined): PublicKeyCredentialDescriptor[] | undefined =>
  list?.map((c) => ({ type: c.type as PublicKeyCredentialType, id: fromB64url(c.id), ...(c.transports ? { transports: c.transports as AuthenticatorTransport[] } : {}) }));

function creationFromJson(o: PublicKeyCredentialCreationOptionsJSON): PublicKeyCredentialCreationOptions {
  const { challenge, user, excludeCredentials, ...rest } = o;
  return {
    ...(rest as unknown as Omit<PublicKeyCredentialCreationOptions, 'challenge' | 'user'>),
    challenge: fromB64url(challenge),
    user: { ...user, id: fromB64url(user.id) },
    ...(excludeCredentials ? { excludeCredentials: descriptors(excludeCredentials)! } : {}),
  };
}

function requestFromJson(o: PublicKeyCredentialRequestOptionsJSON): PublicKeyCredentialRequestOptions {
  const { challenge, allowCredentials, ...rest } = o;
  return {
    ...(rest as unknown as Omit<PublicKeyCredentialRequestOptions, 'challenge'>),
    challenge: fromB64url(challenge),
    ...(allowCredentials ? { allowCredentials: descriptors(allowCredentials)! } : {}),
  };
}

/** What `toJSON()` answers, for a registration or an assertion. */
function credentialToJson(cred: PublicKeyCredential): unknown {
  const r = cred.response;
  const response: Record<string, unknown> = { clientDataJSON: toB64url(r.clientDataJSON) };
  if ('attestationObject' in r) {
    const a = r as AuthenticatorAttestationResponse;
    response.attestationObject = toB64url(a.attestationObject);
    response.transports = a.getTransports?.() ?? [];
    if (a.getAuthenticatorData) response.authenticatorData = toB64url(a.getAuthenticatorData());
    if (a.getPublicKey) response.publicKey = toB64url(a.getPublicKey());
    if (a.getPublicKeyAlgorithm) response.publicKeyAlgorithm = a.getPublicKeyAlgorithm();
  } else {
    const a = r as AuthenticatorAssertionResponse;
    response.authenticatorData = toB64url(a.authenticatorData);
    response.signature = toB64url(a.signature);
    response.userHandle = a.userHandle ? toB64url(a.userHandle) : null;
  }
  return {
    id: cred.id,
    rawId: toB64url(cred.rawId),
    type: cred.type,
    authenticatorAttachment: cred.authenticatorAttachment ?? null,
    clientExtensionResults: cred.getClientExtensionResults(),
    response,
  };
}
