import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'jepsen-like/**/*.test.ts'],
    testTimeout: 120_000,
    pool: 'forks',
  },
})
