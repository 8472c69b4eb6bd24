/**
 * The one set of boolean spellings every surface takes: `consort` attribute values and flags, and the API's
 * boolean query parameters. Shared so that `power_cycle=yes` and `?explain=yes` cannot differ.
 */

/** Words read as true. */
export const TRUE_WORDS: readonly string[] = ['true', 'yes', 'on', '1'];
/** Words read as false. */
export const FALSE_WORDS: readonly string[] = ['false', 'no', 'off', '0'];

/** A boolean word (any case) as a boolean; undefined for anything else. */
export function parseBooleanWord(text: string): boolean | undefined {
  const word = text.trim().toLowerCase();
  if (TRUE_WORDS.includes(word)) return true;
  if (FALSE_WORDS.includes(word)) return false;
  return undefined;
}

/** How a message names the accepted spellings. */
export const BOOLEAN_WORDS_HELP = `${TRUE_WORDS.join('/')} or ${FALSE_WORDS.join('/')}`;
