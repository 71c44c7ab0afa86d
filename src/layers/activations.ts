import { Module } from './module';

/** nn.ReLU: no parameters; fused into the preceding convolution's epilogue when the graph is built. */
export class ReLU extends Module {}

/** nn.GELU() (exact, erf): no parameters; fused into the preceding Linear's epilogue when the graph is built. */
export class GELU extends Module {}
