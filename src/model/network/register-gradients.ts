import { createRequire } from 'node:module';

/**
 * tfjs-core's Node build registers no gradients, and its per-gradient ES modules cannot be loaded
 * by Node (they import directories). The @tensorflow/tfjs bundle registers all of them in the
 * global gradient registry that tfjs-core reads, so loading it once is enough.
 */
createRequire(import.meta.url)('@tensorflow/tfjs');
