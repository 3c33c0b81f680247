/**
 * The part of the WebAssembly JavaScript API that oeld uses (Node has it; TypeScript declares it
 * only in lib.dom, which this project does not load).
 */
declare namespace WebAssembly {
  class Memory {
    constructor(descriptor: { initial: number; maximum?: number; shared?: boolean });
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(delta: number): number;
  }
  class Module {
    constructor(bytes: ArrayBufferView | ArrayBuffer);
  }
  function validate(bytes: ArrayBufferView | ArrayBuffer): boolean;
  class Instance {
    constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
}
