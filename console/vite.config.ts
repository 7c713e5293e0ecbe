// The console is served under /console/ everywhere (make dev's forwarder, CloudFront), so mailed
// links at /reset-password, /accept-invitation and /verify-email reach the same build through
// the fallback.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/console/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    // One small bundle: nothing to gain from splitting at this size.
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
  },
});
