/**
 * Generation without TensorFlow.js between operations: the model's weights copied once into the
 * native addon's decoder (native/cpu/decoder.cc), which runs a whole step (every layer, the key/
 * value cache, the logits) in one call. Used for models that do not train (a served or
 * evaluated version: `trainable` false), whose weights never change after loading; a model in
 * training keeps TensorFlow.js's forward pass. OELD_NATIVE_DECODER=0 turns it off.
 */
import { loadCpuKernels, type CpuKernels } from '../kernels/cpu-kernels.ts';
import type { Transformer } from '../network/transformer.ts';

export class NativeDecoder {
  private handle: unknown;
  readonly vocab: number;

  private constructor(private readonly k: CpuKernels, model: Transformer) {
    const c = model.config;
    const { weights, invFreq } = model.decoderWeights();
    const dims = Int32Array.from([c.vocabSize, c.hidden, c.intermediate, c.layers, c.heads, c.kvHeads, c.headDim,
      c.qkvBias ? 1 : 0, c.oBias ? 1 : 0, c.qkNorm ? 1 : 0, c.tiedEmbeddings ? 1 : 0, 0]);
    this.handle = k.decoderCreate(dims, c.eps, invFreq, weights);
    this.vocab = c.vocabSize;
  }

  /** The decoder of a model that does not train, made at first use and kept with the model; null where the addon or its decoder is missing. */
  static for(model: Transformer): NativeDecoder | null {
    if (model.trainable || process.env.OELD_NATIVE_DECODER === '0') return null;
    const cached = decoders.get(model);
    if (cached !== undefined) return cached;
    const loaded = loadCpuKernels();
    const d = 'kernels' in loaded && typeof loaded.kernels.decoderCreate === 'function' ? new NativeDecoder(loaded.kernels, model) : null;
    decoders.set(model, d);
    return d;
  }

  /** Forgets the decoder of a model (it is disposed). */
  static release(model: Transformer): void {
    decoders.get(model)?.dispose();
    decoders.delete(model);
  }

  /** A new, empty sequence; `capacity` positions of its cache are reserved at once. */
  newSequence(capacity = 0): number { return this.k.decoderNewSequence(this.handle, capacity); }
  freeSequence(id: number): void { this.k.decoderFreeSequence(this.handle, id); }

  /** Appends each token to its sequence; the logits of the tokens at outputRows, [rows, vocab]. */
  forward(tokens: Int32Array, sequences: Int32Array, outputRows: Int32Array): Float32Array {
    const logits = new Float32Array(outputRows.length * this.vocab);
    this.k.decoderForward(this.handle, tokens, sequences, outputRows, logits);
    return logits;
  }

  dispose(): void { this.k.decoderDispose(this.handle); }
}

const decoders = new WeakMap<Transformer, NativeDecoder | null>();
