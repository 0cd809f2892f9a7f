// Lint: typescript-eslint's recommended rules, type-aware checks for promises and
// exhaustive switches (a forgotten promise loses an error or a write; a new union
// member must not fall through silently), plus the module boundary: code in xeps/
// may import only the module API (src/api) and other xeps.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/**', 'data/**', 'certs/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
    },
  },
  {
    files: ['xeps/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./\\.\\./src/(?!api/)',
              message: 'xeps/ may import only from src/api (the module contract).',
            },
            {
              regex: '^(ltx|@xmpp/.*|pg|ioredis|better-sqlite3)$',
              message: 'xeps/ must not use drivers or XML libraries directly; use src/api.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/api/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'error' },
  },
);
