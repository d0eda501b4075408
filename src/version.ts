// The package's version, read once: what `specserve --version` prints and the V2 server metadata says.
import { readFileSync } from 'node:fs'

export const packageVersion = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
