// What "Add server" checks before showing the install command.

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[?::1\]?)$/i;

/** Whether `host` names this machine only (`localhost`, `127.x.y.z`, `::1`). */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.test(host);
}

/**
 * The NATS URLs only the hub's own machine can reach (`tls://localhost:4222`): hosts given one
 * would dial themselves. That is compose's default until `FLICK_DOMAIN` is set.
 */
export function loopbackUrls(urls: readonly string[]): string[] {
  return urls.filter((url) => {
    const authority = url.replace(/^[a-z]+:\/\//i, '').split('/')[0];
    const host = authority.startsWith('[') ? authority.slice(0, authority.indexOf(']') + 1) : authority.replace(/:\d+$/, '');
    return isLoopbackHost(host);
  });
}
