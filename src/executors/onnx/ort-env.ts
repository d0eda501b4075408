// onnxruntime-node's own settings from the environment, made before any onnxruntime session
// opens. Imported first by session.ts (every thread that opens one) and slot.ts (the main
// thread, before it starts a worker).
//
// Usage telemetry. onnxruntime (1.2x and later, on Linux too) sends 1DS usage events to
// mobile.events.data.microsoft.com, queues them in
// `${XDG_CACHE_HOME:-~/.cache}/Microsoft/DeveloperTools/.onnxruntime/onnxruntime.db` and writes
// `${TMPDIR:-/tmp}/mat-debug-<pid>.log`, unless ORT_DISABLE_TELEMETRY=1. The library reads the
// variable with getenv() once, when its first session creates the process's environment (not
// when the module loads). A worker thread's process.env is its own copy, which getenv() does
// not see: the main thread's assignment (a real setenv) is the one that counts, and must come
// before the first worker opens a session. An operator's own value, 0 included, is kept.
process.env.ORT_DISABLE_TELEMETRY ??= '1'
