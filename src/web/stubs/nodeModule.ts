/**
 * `node:module` for the browser bundle (scripts/bundle-web.mjs aliases it here): the engine asks
 * it for the native addon, which a browser never has, so every load fails and the engine falls
 * back to stock tfjs kernels.
 */
export function createRequire(_from: string | URL): (id: string) => never {
  return (id) => {
    throw new Error(`${id}: no native addons in the browser`);
  };
}
