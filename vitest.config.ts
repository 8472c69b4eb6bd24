import { defineConfig } from 'vitest/config';

// Tests run the workspace packages from their TypeScript sources (the `@consortium/source` export condition),
// so a test never sees a stale build.
const conditions = ['@consortium/source'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'plugins/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 20_000,
  },
});
