import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'bench/**/*.test.ts', 'guest/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 20_000,
  },
});
