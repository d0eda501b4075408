/** A request URL's path: what comes before its query string (`/healthz?probe=1` → `/healthz`). */
export function pathOf(url: string): string {
  const query = url.indexOf('?')
  return query < 0 ? url : url.slice(0, query)
}
