// A QR code drawn in the browser from text (an otpauth:// URI): the `qrcode` package computes
// the modules, this draws them as one SVG path. Nothing leaves the page, and no HTML string is
// injected (the CSP allows no inline styles). The package loads only when a code is shown.
import { useEffect, useState } from 'preact/hooks';

/** The quiet zone the QR specification asks around the symbol, in modules. */
const QUIET = 4;

function pathOf(size: number, dark: (row: number, col: number) => boolean): string {
  const parts: string[] = [];
  for (let row = 0; row < size; row++) {
    // Runs of dark modules on a row become one rectangle each: a short path, crisp at any size.
    for (let col = 0; col < size; ) {
      if (!dark(row, col)) {
        col++;
        continue;
      }
      const start = col;
      while (col < size && dark(row, col)) col++;
      parts.push(`M${start + QUIET} ${row + QUIET}h${col - start}v1h-${col - start}z`);
    }
  }
  return parts.join('');
}

export function QrCode({ text, label, size = 224 }: { text: string; label: string; size?: number }) {
  // The box keeps its size (CSS .qr) while the package loads.
  const [drawn, setDrawn] = useState<{ text: string; modules: number; path: string } | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    let live = true;
    import('qrcode')
      .then(({ create }) => {
        const qr = create(text, { errorCorrectionLevel: 'M' });
        const m = qr.modules;
        if (live) setDrawn({ text, modules: m.size, path: pathOf(m.size, (r, c) => m.get(r, c) === 1) });
      })
      .catch((e: unknown) => live && setError(e instanceof Error ? e.message : String(e)));
    return () => {
      live = false;
    };
  }, [text]);
  if (error) return <p class="bad">The QR code could not be drawn ({error}): enter the key by hand.</p>;
  if (!drawn || drawn.text !== text) return <p class="qr qr-loading" role="status">
        Drawing the QR code…
      </p>;
  const box = drawn.modules + 2 * QUIET;
  return (
    <svg class="qr" width={size} height={size} viewBox={`0 0 ${box} ${box}`} role="img" aria-label={label} shape-rendering="crispEdges">
      <rect width={box} height={box} fill="#ffffff" />
      <path d={drawn.path} fill="#000000" />
    </svg>
  );
}
