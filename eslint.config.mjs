// Type-aware lint for the whole workspace; plugins may import only @consortium/plugin-api.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';

// A package reaches another only through its name and exports, never by a relative path into its folder
// (`../../server/src/...`, `../packages/...`); a package's own relative imports stay inside it.
const crossPackage = {
  regex: '^(\\.\\./)+((packages|plugins|test|bench)/|[^./][^/]*/src/)',
  message: 'Import another package by its name (@consortium/...), not by a relative path into its folder.',
};

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: ['./tsconfig.check.json'], tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      '@typescript-eslint/no-unnecessary-condition': ['error', { allowConstantLoopConditions: true }],
      'import-x/no-cycle': 'error',
      'no-restricted-imports': ['error', { patterns: [crossPackage] }],
      // JSON values are edited on fresh copies; deleting a computed key from a copy is the plain way to drop it.
      '@typescript-eslint/no-dynamic-delete': 'off',
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportDefaultDeclaration', message: 'Use named exports.' },
      ],
    },
  },
  {
    files: ['plugins/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@consortium/*', '!@consortium/plugin-api'],
              message: 'Plugins import only @consortium/plugin-api.',
            },
            { group: ['**/src/**', '../../packages/**'], message: "Never import another package's src/." },
            crossPackage,
          ],
        },
      ],
    },
  },
  {
    // A plugin's tests may build a real planner and store around it.
    files: ['plugins/**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [crossPackage] }] },
  },
  {
    files: ['packages/core/src/**/*.ts'],
    ignores: ['packages/core/src/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@consortium/*'], message: 'core imports no other Consortium package.' },
            crossPackage,
          ],
        },
      ],
    },
  },
  {
    // Core's tests take their fixtures from the test kit (a devDependency), and nothing else.
    files: ['packages/core/src/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@consortium/*', '!@consortium/testkit'],
              message: "core's tests import no other Consortium package than the test kit.",
            },
            crossPackage,
          ],
        },
      ],
    },
  },
  {
    // Tests and benches read JSON bodies loosely and assert on them.
    files: ['**/*.test.ts', '**/test-support/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // Tool configs must export a default.
    files: ['**/*.mjs', 'packages/*/bin/*.js', 'vitest.config.ts'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      parserOptions: { project: null },
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
    },
    rules: { ...tseslint.configs.disableTypeChecked.rules, 'no-restricted-syntax': 'off' },
  },
);
