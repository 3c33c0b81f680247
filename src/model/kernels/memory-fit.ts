/**
 * Whether a model fits the backend before it is loaded, instead of a crash after: tfjs's
 * WebAssembly kernels read out of bounds once the heap passes 2 GiB (a Qwen3-0.6B-shaped model
 * loads, then dies at its first forward pass), and that heap never shrinks. Other backends have no
 * such hard cap here (tfjs-node and the pure-JS backend use the process's memory). Pure.
 */
export const WASM_HEAP_LIMIT_BYTES = 2 * 2 ** 30;

const mib = (bytes: number) => Math.ceil(bytes / 2 ** 20).toLocaleString('en-US');

/** Why `needBytes` more cannot be held on `backend` with `inUseBytes` held already, or null when it fits. */
export function memoryRefusal(needBytes: number, backend: string, inUseBytes: number, purpose: 'answer' | 'train a round'): string | null {
  if (backend !== 'wasm' || inUseBytes + needBytes <= WASM_HEAP_LIMIT_BYTES) return null;
  return `needs about ${mib(needBytes)} MiB to ${purpose} on the WebAssembly backend, with ${mib(inUseBytes)} MiB already held, `
    + `and that backend's kernels fail past ${mib(WASM_HEAP_LIMIT_BYTES)} MiB: use a smaller model, or a backend without that cap `
    + '(@tensorflow/tfjs-node, or a GPU trainer)';
}
