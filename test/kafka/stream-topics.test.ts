// Stream mode must not write where it reads: an output, dead-letter or records topic equal to
// the input topic (defaults resolved) is refused at config load, with its path and line.
import { describe, expect, it } from 'vitest'
import { configIssues } from '../helpers.ts'

const base = `models:
  m: { kind: onnx, path: ../models/cancer_logreg.onnx }
ensembles:
  cancer: { strategy: deadline-fallback, models: [m] }
output:
  kafka:
    brokers: ["localhost:9092"]
`

const issues = (yaml: string): { path: string; line?: number; message: string }[] =>
  configIssues(base + yaml).map((i) => ({ path: i.path, line: i.line, message: i.message }))

describe('stream mode topics', () => {
  it('refuses a dead-letter or output topic equal to the input topic (a poison message would dead-letter itself for ever)', () => {
    expect(issues(`    stream: { enabled: true, input_topic: requests, dead_letter_topic: requests, output_topic: requests }\n`)).toEqual([
      { path: 'output.kafka.stream.output_topic', line: 8, message: expect.stringMatching(/output_topic must differ from the stream's input_topic \("requests"\)/) },
      { path: 'output.kafka.stream.dead_letter_topic', line: 8, message: expect.stringMatching(/dead_letter_topic must differ/) },
    ])
  })

  it('compares the resolved defaults: output_topic set to the default input topic is refused', () => {
    expect(issues(`    stream: { input_topic: specserve.requests.dlq }\n`)).toEqual([])
    expect(issues(`    stream: { output_topic: specserve.requests }\n`)).toEqual([expect.objectContaining({ path: 'output.kafka.stream.output_topic' })])
  })

  it('refuses the serving records topic equal to the input topic when stream mode is configured', () => {
    expect(issues(`    topic: requests\n    stream: { input_topic: requests }\n`)).toEqual([
      expect.objectContaining({ path: 'output.kafka.topic', line: 8, message: expect.stringMatching(/topic \(the serving records\) must differ/) }),
    ])
    // Without a stream section the records topic is only a topic.
    expect(issues(`    topic: specserve.requests\n`)).toEqual([])
  })
})
