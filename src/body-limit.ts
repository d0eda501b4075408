// A fetched body read as it streams in, never past a limit: what a peer says in
// content-length (or leaves out, chunked) does not decide how much is held in memory.

/** The response's body, or null once it passes `limit` bytes (leaving the read cancels the rest). */
export async function bodyAtMost(response: Response, limit: number): Promise<Buffer | null> {
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of response.body ?? []) {
    size += chunk.byteLength
    if (size > limit) return null
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, size)
}
