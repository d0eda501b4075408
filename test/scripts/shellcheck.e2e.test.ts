// Every shell script in the repository passes shellcheck (provisioned by
// scripts/deploy-tools.sh), following what each sources: the provisioning scripts, the deploy
// helpers and .ci/run. A finding is fixed, or disabled on its line with the reason beside it.
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { tool } from '../deploy/tools.ts'
import { root } from '../helpers.ts'

/** Tracked files that are shell scripts: by their extension, or by a shebang naming a shell. */
function shellScripts(): string[] {
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean)
  return files.filter((file) => file.endsWith('.sh') || /^#!.*\b(ba)?sh\b/.test(readFileSync(join(root, file), 'utf8').slice(0, 64)))
}

it('finds nothing in any shell script of the repository', () => {
  const scripts = shellScripts()
  expect(scripts).toEqual(expect.arrayContaining(['.ci/run', 'scripts/kafka.sh', 'scripts/peers/lib.sh', 'deploy/secure-pki.sh']))
  const { status, stdout, stderr } = spawnSync(tool('shellcheck'), ['--external-sources', '--source-path=SCRIPTDIR', '--format=gcc', ...scripts], { cwd: root, encoding: 'utf8' })
  expect({ status, findings: stdout, stderr }).toEqual({ status: 0, findings: '', stderr: '' })
})
