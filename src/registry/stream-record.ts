// What one record of the model stream becomes: its ModelDescriptor decoded and checked (a
// repository model's name, an ONNX model), a replay known by its sha256 (the one it carries,
// before its model is read; else its model's), or a new version arriving through the registry
// as an upload does. One that cannot become a version throws Refused.
import type { Logger } from '../types.ts'
import type { RepositoryConfig } from './config.ts'
import { decodeDescriptor, type ModelDescriptor } from './descriptor.ts'
import { modelOf, Refused } from './location.ts'
import type { Registry } from './registry.ts'
import { sha256HexYielding } from './sha256.ts'
import { loggedReplay } from './stream-history.ts'
import { outcome, type Judged } from './stream-judge.ts'
import type { Raw } from './stream.ts'
import { versionExists } from './version-rules.ts'

export async function handleRecord(message: Raw, registry: Registry, repository: RepositoryConfig, log: Logger): Promise<Judged> {
  let d: ModelDescriptor
  try {
    d = decodeDescriptor(message.value ?? Buffer.alloc(0))
  } catch (err) {
    throw new Refused((err as Error).message)
  }
  const name = d.name || message.key || ''
  if (!registry.isRepositoryModel(name)) throw new Refused(`unknown model "${name.slice(0, 64)}": no source: repository model by that name`)
  if (d.modelType !== '' && d.modelType !== 'onnx') throw new Refused(`model_type "${d.modelType.slice(0, 32)}" is not onnx`)
  if (d.sha256) {
    // A record replayed (a new consumer group reads the topic from the start, as every restart
    // under a new instance name does) is known by the sha256 it carries, before its model is
    // read: a location whose server is gone since, or that answers 404 now, must neither stop
    // the stream (retried for ever) nor count a version judged long ago as a new rejection.
    const replay = await replayed(registry, log, name, d.sha256, d.version, message.offset, true)
    if (replay) return replay
    // Its version taken by other bytes: refused as arrive() refuses it, without reading a model
    // it could not store. (The model is known by now: versionWithSha waited for a reload adding it.)
    if (d.version > 0 && registry.list(name).some((m) => m.version === d.version)) throw versionExists(name, d.version)
  }
  const bytes = await modelOf(d, repository)
  const sha = await sha256HexYielding(bytes)
  if (d.sha256 && d.sha256 !== sha) throw new Refused(`sha256 mismatch: the descriptor says ${d.sha256}, the model's bytes are ${sha}`)
  // Without a sha256 in the record, a replay is known only now; with one, this finds the version stored while the model was read.
  const replay = await replayed(registry, log, name, sha, d.version, message.offset, false)
  if (replay) return replay
  return outcome(registry.arrive(name, bytes, { version: d.version, source: 'kafka', description: d.description || undefined }))
}

/**
 * The result of a record whose bytes (`sha`) a version of the model has already (`version`
 * itself, unless 0), whatever its state: a rejected one too, whose meta.json the repository
 * keeps when its model file is pruned. Undefined for bytes not stored. `unread`: by its claimed sha256.
 */
async function replayed(registry: Registry, log: Logger, name: string, sha: string, version: number, offset: bigint, unread: boolean): Promise<Judged | undefined> {
  const known = await registry.versionWithSha(name, sha, version)
  if (known === undefined) return undefined
  // Stored but never judged (this record's own try failed on a system error after storing
  // it, or its judging is still queued): not a replay yet. Judged now, in turn; a system
  // error again is retried like any other.
  if (registry.version(name, known).state === 'loading') return outcome(registry.judgeStored(name, known))
  loggedReplay(log, name, known, sha, version, offset, unread)
  return ['duplicate', null, known]
}
