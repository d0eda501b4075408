// Every shell script in the repository passes shellcheck (provisioned by
// scripts/deploy-tools.sh), following what each sources: the provisioning scripts, the deploy
// helpers and .ci/run. A finding is fixed, or disabled on its line with the reason beside it.
import { execFileSync, spawnSync } from 'node:child_process'
import { closeSync, existsSync, openSync, readSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { tool } from '../deploy/tools.ts'
import { root } from '../helpers.ts'

/** A file's first bytes, as text. */
function opening(file: string): string {
  const fd = openSync(file, 'r')
  try {
    const head = Buffer.alloc(64)
    return head.toString('latin1', 0, readSync(fd, head, 0, head.length, 0))
  } finally {
    closeSync(fd)
  }
}

/** Tracked files (in this checkout) that are shell scripts: by their extension, or by a shebang naming a shell. */
function shellScripts(): string[] {
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' }).split('\0').filter((file) => file && existsSync(join(root, file)))
  return files.filter((file) => file.endsWith('.sh') || /^#!.*\b(ba)?sh\b/.test(opening(join(root, file))))
}

it('finds nothing in any shell script of the repository', () => {
  const scripts = shellScripts()
  expect(scripts).toEqual(expect.arrayContaining(['.ci/run', 'scripts/kafka.sh', 'scripts/peers/lib.sh', 'deploy/secure-pki.sh']))
  const { status, stdout, stderr } = spawnSync(tool('shellcheck'), ['--external-sources', '--source-path=SCRIPTDIR', '--format=gcc', ...scripts], { cwd: root, encoding: 'utf8' })
  expect({ status, findings: stdout, stderr }).toEqual({ status: 0, findings: '', stderr: '' })
})
