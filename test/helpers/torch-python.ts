/** The Python interpreter the torch trainer's tests use (src/trainer/torch-python.ts): these tests never skip. */
export { torchPythonOrThrow as torchPython } from '../../src/trainer/torch-python.ts';
