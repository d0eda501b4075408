// The bench's reading of a gateway's /metrics text: its samples are found labelled or not
// (an exporter may add scope labels to any of them), pauses over 10 ms are the count above
// the 0.01-s bucket, and text without the runtime figures reads as none.
import { describe, expect, it } from 'vitest'
import { runtimeScrape, sliceRuntime } from '../../bench/lib/gateway-runtime.ts'

const text = (lines: string[]) => `${lines.join('\n')}\n`

describe('runtimeScrape', () => {
  it('reads the samples whether or not they carry labels', () => {
    const scrape = runtimeScrape(
      text([
        '# HELP nodejs_eventloop_delay_max Event loop maximum delay.',
        'nodejs_eventloop_delay_max{otel_scope_name="specserve"} 0.025',
        'nodejs_eventloop_delay_maximum 9', // another metric whose name starts alike
        'specserve_eventloop_delay_max_cpu_ratio 0.4',
        'nodejs_eventloop_utilization{otel_scope_name="specserve"} 0.75',
        'v8js_gc_duration_count 3',
        'v8js_gc_duration_sum 0.03',
        'v8js_gc_duration_bucket{le="0.01"} 2',
        'v8js_gc_duration_count{v8js_gc_type="major"} 1',
        'v8js_gc_duration_sum{v8js_gc_type="major"} 0.02',
        'v8js_gc_duration_bucket{v8js_gc_type="major",le="0.01"} 0',
      ]),
    )
    expect(scrape).toEqual({ loopDelayMaxMs: 25, loopDelayCpu: 0.4, loopBusy: 0.75, gcPauses: 4, gcMs: 50, gcOver10ms: 2 })
  })

  it('is null for text without the runtime figures, and a slice needs both ends', () => {
    expect(runtimeScrape(text(['# HELP up whether', 'up 1']))).toBeNull()
    const end = runtimeScrape(text(['nodejs_eventloop_utilization 0.5', 'nodejs_eventloop_delay_max 0.011']))
    expect(sliceRuntime(null, end)).toBeNull()
    expect(sliceRuntime(end, end)).toEqual({ loopDelayMs: 11, loopDelayCpu: null, loopBusy: 0.5, gcMs: 0, gcOver10ms: 0 })
  })
})
