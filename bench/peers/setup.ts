// Shared by the benchmark scripts: the Node peers' installation and the median.

/** Where the Node peers live: `bench/peers`, with a git-ignored `node_modules`. */
export const PEERS: string = new URL(".", import.meta.url).pathname.replace(/\/$/, "");

/** Installs the packages of bench/peers/package.json from npm unless `required` are present. */
export function ensurePeers(required: string[]): void {
  try {
    for (const name of required) Deno.statSync(`${PEERS}/node_modules/${name}`);
  } catch {
    console.error("installing the Node peers from npm into bench/peers/node_modules ...");
    const out = new Deno.Command("npm", {
      args: ["install", "--no-audit", "--no-fund", "--prefix", PEERS],
      stdout: "inherit",
      stderr: "inherit",
    }).outputSync();
    if (!out.success) throw new Error("npm install failed in bench/peers");
  }
}

/** The median of `values`. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
